/*
 * Keyed BLAKE2b (RFC 7693), written from the RFC for uwsgi-mules' envelope
 * tags. Its output equals hashlib.blake2b(data, key=key, digest_size=n)
 * (checked against hashlib by the tests for every length up to a few blocks).
 *
 * The key block is absorbed once (blake2b_keyed_init); every tag then starts
 * from a copy of that state, as the Python code does with mac.copy().
 */
#ifndef UWSGI_MULES_BLAKE2B_H
#define UWSGI_MULES_BLAKE2B_H

#include <stdint.h>
#include <string.h>

#define BLAKE2B_BLOCK 128

typedef struct {
    uint64_t h[8];   /* chain value after the key block */
    uint64_t h0[8];  /* chain value before it (used only for an empty message) */
    uint8_t key_block[BLAKE2B_BLOCK];
    size_t digest_size;
} blake2b_keyed;

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

/* RFC 7693, 2.7: rounds 10 and 11 use rows 0 and 1 again */
static const uint8_t blake2b_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t blake2b_load64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

static inline uint64_t blake2b_rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

#define BLAKE2B_G(a, b, c, d, x, y)          \
    do {                                     \
        v[a] = v[a] + v[b] + (x);            \
        v[d] = blake2b_rotr(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];                  \
        v[b] = blake2b_rotr(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);            \
        v[d] = blake2b_rotr(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];                  \
        v[b] = blake2b_rotr(v[b] ^ v[c], 63); \
    } while (0)

#define BLAKE2B_ROUND(r)                                                                 \
    do {                                                                                 \
        BLAKE2B_G(0, 4, 8, 12, m[blake2b_sigma[(r) % 10][0]], m[blake2b_sigma[(r) % 10][1]]);          \
        BLAKE2B_G(1, 5, 9, 13, m[blake2b_sigma[(r) % 10][2]], m[blake2b_sigma[(r) % 10][3]]);          \
        BLAKE2B_G(2, 6, 10, 14, m[blake2b_sigma[(r) % 10][4]], m[blake2b_sigma[(r) % 10][5]]);         \
        BLAKE2B_G(3, 7, 11, 15, m[blake2b_sigma[(r) % 10][6]], m[blake2b_sigma[(r) % 10][7]]);         \
        BLAKE2B_G(0, 5, 10, 15, m[blake2b_sigma[(r) % 10][8]], m[blake2b_sigma[(r) % 10][9]]);         \
        BLAKE2B_G(1, 6, 11, 12, m[blake2b_sigma[(r) % 10][10]], m[blake2b_sigma[(r) % 10][11]]);       \
        BLAKE2B_G(2, 7, 8, 13, m[blake2b_sigma[(r) % 10][12]], m[blake2b_sigma[(r) % 10][13]]);        \
        BLAKE2B_G(3, 4, 9, 14, m[blake2b_sigma[(r) % 10][14]], m[blake2b_sigma[(r) % 10][15]]);        \
    } while (0)

/* RFC 7693, 3.2: compress one 128-byte block; t is the byte count so far
 * (our messages stay far below 2**64 bytes, so the high word is 0). */
static void blake2b_compress_scalar(uint64_t h[8], const uint8_t block[BLAKE2B_BLOCK], uint64_t t, int last) {
    uint64_t v[16], m[16];
    int i;
    for (i = 0; i < 16; i++) m[i] = blake2b_load64(block + 8 * i);
    for (i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    /* the twelve rounds unrolled: message indexes become constants */
    BLAKE2B_ROUND(0);
    BLAKE2B_ROUND(1);
    BLAKE2B_ROUND(2);
    BLAKE2B_ROUND(3);
    BLAKE2B_ROUND(4);
    BLAKE2B_ROUND(5);
    BLAKE2B_ROUND(6);
    BLAKE2B_ROUND(7);
    BLAKE2B_ROUND(8);
    BLAKE2B_ROUND(9);
    BLAKE2B_ROUND(10);
    BLAKE2B_ROUND(11);
    for (i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* The same compression with AVX2 (x86-64 with GCC or Clang, chosen at run
 * time when the CPU and the OS support it): the four columns, then the four
 * diagonals, of the 4x4 state are computed at once, one 256-bit row each.
 * About half the instructions of the scalar code for one block. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(UWSGI_MULES_NO_AVX2)
#include <immintrin.h>
#define BLAKE2B_HAVE_AVX2 1

#define BLAKE2B_AVX2_G(x, y)                                                              \
    do {                                                                                  \
        a = _mm256_add_epi64(_mm256_add_epi64(a, b), (x));                                \
        d = _mm256_shuffle_epi32(_mm256_xor_si256(d, a), _MM_SHUFFLE(2, 3, 0, 1));        \
        c = _mm256_add_epi64(c, d);                                                       \
        b = _mm256_shuffle_epi8(_mm256_xor_si256(b, c), rot24);                           \
        a = _mm256_add_epi64(_mm256_add_epi64(a, b), (y));                                \
        d = _mm256_shuffle_epi8(_mm256_xor_si256(d, a), rot16);                           \
        c = _mm256_add_epi64(c, d);                                                       \
        b = _mm256_xor_si256(b, c);                                                       \
        b = _mm256_or_si256(_mm256_add_epi64(b, b), _mm256_srli_epi64(b, 63));            \
    } while (0)

#define BLAKE2B_AVX2_M(s, i, j, k, l) _mm256_setr_epi64x(m[(s)[i]], m[(s)[j]], m[(s)[k]], m[(s)[l]])

#define BLAKE2B_AVX2_ROUND(r)                                                             \
    do {                                                                                  \
        const uint8_t *s = blake2b_sigma[(r) % 10];                                       \
        BLAKE2B_AVX2_G(BLAKE2B_AVX2_M(s, 0, 2, 4, 6), BLAKE2B_AVX2_M(s, 1, 3, 5, 7));     \
        /* diagonals: rows b, c, d turned left by 1, 2, 3 lanes */                        \
        b = _mm256_permute4x64_epi64(b, _MM_SHUFFLE(0, 3, 2, 1));                         \
        c = _mm256_permute4x64_epi64(c, _MM_SHUFFLE(1, 0, 3, 2));                         \
        d = _mm256_permute4x64_epi64(d, _MM_SHUFFLE(2, 1, 0, 3));                         \
        BLAKE2B_AVX2_G(BLAKE2B_AVX2_M(s, 8, 10, 12, 14), BLAKE2B_AVX2_M(s, 9, 11, 13, 15)); \
        b = _mm256_permute4x64_epi64(b, _MM_SHUFFLE(2, 1, 0, 3));                         \
        c = _mm256_permute4x64_epi64(c, _MM_SHUFFLE(1, 0, 3, 2));                         \
        d = _mm256_permute4x64_epi64(d, _MM_SHUFFLE(0, 3, 2, 1));                         \
    } while (0)

__attribute__((target("avx2"))) static void blake2b_compress_avx2(uint64_t h[8], const uint8_t block[BLAKE2B_BLOCK],
                                                                   uint64_t t, int last) {
    const __m256i rot24 = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1,
                                           2, 11, 12, 13, 14, 15, 8, 9, 10);
    const __m256i rot16 = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0,
                                           1, 10, 11, 12, 13, 14, 15, 8, 9);
    __m256i a, b, c, d, h0, h1;
    long long m[16];
    memcpy(m, block, BLAKE2B_BLOCK); /* x86 is little-endian: the words as blake2b_load64 reads them */
    h0 = a = _mm256_loadu_si256((const __m256i *)&h[0]);
    h1 = b = _mm256_loadu_si256((const __m256i *)&h[4]);
    c = _mm256_loadu_si256((const __m256i *)&blake2b_iv[0]);
    d = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)&blake2b_iv[4]),
                         _mm256_setr_epi64x((long long)t, 0, last ? -1LL : 0, 0));
    BLAKE2B_AVX2_ROUND(0);
    BLAKE2B_AVX2_ROUND(1);
    BLAKE2B_AVX2_ROUND(2);
    BLAKE2B_AVX2_ROUND(3);
    BLAKE2B_AVX2_ROUND(4);
    BLAKE2B_AVX2_ROUND(5);
    BLAKE2B_AVX2_ROUND(6);
    BLAKE2B_AVX2_ROUND(7);
    BLAKE2B_AVX2_ROUND(8);
    BLAKE2B_AVX2_ROUND(9);
    BLAKE2B_AVX2_ROUND(10);
    BLAKE2B_AVX2_ROUND(11);
    _mm256_storeu_si256((__m256i *)&h[0], _mm256_xor_si256(h0, _mm256_xor_si256(a, c)));
    _mm256_storeu_si256((__m256i *)&h[4], _mm256_xor_si256(h1, _mm256_xor_si256(b, d)));
}
#endif

/* Which compression runs: 0 the scalar code, 1 AVX2 (-1: not chosen yet). */
static int blake2b_avx2 = -1;

/* The compression this process uses: AVX2 when the CPU and the OS allow it. */
static void blake2b_compress(uint64_t h[8], const uint8_t block[BLAKE2B_BLOCK], uint64_t t, int last) {
#ifdef BLAKE2B_HAVE_AVX2
    if (blake2b_avx2 < 0) {
        __builtin_cpu_init();
        blake2b_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    if (blake2b_avx2) {
        blake2b_compress_avx2(h, block, t, last);
        return;
    }
#else
    blake2b_avx2 = 0;
#endif
    blake2b_compress_scalar(h, block, t, last);
}

/* Choose the compression: "scalar", "avx2" (if supported) or "auto"; returns
 * the name of the one in use (tests run every length with both). */
static const char *blake2b_choose(const char *name) {
    int supported = 0;
#ifdef BLAKE2B_HAVE_AVX2
    __builtin_cpu_init();
    supported = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    if (name != NULL) {
        if (strcmp(name, "scalar") == 0) blake2b_avx2 = 0;
        else if (strcmp(name, "avx2") == 0 || strcmp(name, "auto") == 0) blake2b_avx2 = supported;
    } else if (blake2b_avx2 < 0) {
        blake2b_avx2 = supported;
    }
    return blake2b_avx2 ? "avx2" : "scalar";
}

/* key: 1..64 bytes; digest_size: 1..64 */
static void blake2b_keyed_init(blake2b_keyed *state, const uint8_t *key, size_t key_size, size_t digest_size) {
    int i;
    for (i = 0; i < 8; i++) state->h0[i] = blake2b_iv[i];
    state->h0[0] ^= 0x01010000ULL ^ ((uint64_t)key_size << 8) ^ (uint64_t)digest_size;
    memset(state->key_block, 0, BLAKE2B_BLOCK);
    memcpy(state->key_block, key, key_size);
    memcpy(state->h, state->h0, sizeof(state->h));
    blake2b_compress(state->h, state->key_block, BLAKE2B_BLOCK, 0);  /* the key block, when data follows */
    state->digest_size = digest_size;
}

/* The tag of data[0:size] into out[0:digest_size]. */
static void blake2b_keyed_tag(const blake2b_keyed *state, const uint8_t *data, size_t size, uint8_t *out) {
    uint64_t h[8];
    uint8_t block[BLAKE2B_BLOCK];
    uint64_t t = BLAKE2B_BLOCK;
    size_t i;
    if (size == 0) {  /* the key block is the last block */
        memcpy(h, state->h0, sizeof(h));
        blake2b_compress(h, state->key_block, BLAKE2B_BLOCK, 1);
    } else {
        memcpy(h, state->h, sizeof(h));
        while (size > BLAKE2B_BLOCK) {
            t += BLAKE2B_BLOCK;
            blake2b_compress(h, data, t, 0);
            data += BLAKE2B_BLOCK;
            size -= BLAKE2B_BLOCK;
        }
        t += size;
        memset(block, 0, BLAKE2B_BLOCK);
        memcpy(block, data, size);
        blake2b_compress(h, block, t, 1);
    }
    for (i = 0; i < state->digest_size; i++) out[i] = (uint8_t)(h[i >> 3] >> (8 * (i & 7)));
}

#endif
