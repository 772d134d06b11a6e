from django.db import models


class Note(models.Model):
    """A note; ``mule`` is the id of the mule that wrote or processed it."""

    text = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default="new")
    mule = models.IntegerField(null=True)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.pk, "text": self.text, "status": self.status, "mule": self.mule}
