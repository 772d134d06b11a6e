"""The typed layer: Mule, Farm, mule_offload and the mule-side dispatcher."""
