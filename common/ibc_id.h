/* SPDX-License-Identifier: MIT */
/*
 * ibc_id.h - the one random-id generator. Run ids (results.csv, projection.csv, the report
 * directory name) and job ids (shm segment names, the rendezvous' job check) are all
 * IBC_ID_HEX lowercase hex digits from the kernel's random source (getrandom), with a
 * clock/pid/counter mix only when that source fails.
 */
#ifndef IBC_ID_H
#define IBC_ID_H

#include <stddef.h>
#include <stdint.h>

#define IBC_ID_HEX 16 /* hex digits in every id: 64 random bits */
#define IBC_ID_BUFLEN (IBC_ID_HEX + 1)

/* Fill buf with len random bytes; 0, or -EIO when only the fallback mix was available (buf is
 * still filled: callers that just need a unique name may ignore the result). */
int ibc_random_bytes(void *buf, size_t len);
/* A fresh id: IBC_ID_HEX hex digits and a NUL into out (outlen >= IBC_ID_BUFLEN, else the
 * id is cut to fit). */
void ibc_new_id(char *out, size_t outlen);
/* A random 64-bit number (nonces). */
uint64_t ibc_random_u64(void);

#endif
