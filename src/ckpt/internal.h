/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared between the checkpoint engine, its file format and directory code. */
#ifndef TSR_CKPT_INTERNAL_H
#define TSR_CKPT_INTERNAL_H
#include "common/h5mem.h"
#include <stdint.h>
#include "tessera/ckpt.h"

#define TSR_CKPT_MAX_DIMS 4

typedef struct tsr_ckpt_region {
    char path[256];
    void *live; /* the caller's memory */
    void *snap; /* host snapshot the writer reads */
    tsr_ckpt_type_t type;
    int ndims;
    size_t dims[TSR_CKPT_MAX_DIMS];
    size_t bytes;
} tsr_ckpt_region_t;

/* Writes the regions (their live memory if from_live, else their
 * snapshots) and meta to path atomically, building the HDF5 metadata in img
 * (kept between writes so its memory stays warm). write.c */
int tsr_ckpt_file_write(const char *path, const tsr_ckpt_region_t *r, int n, int from_live, const tsr_ckpt_meta_t *meta,
                        tsr_h5_image_t *img);
/* Verifies path; when regions are given, each must be in the file with the
 * same type and shape and is read into its snapshot buffer. */
int tsr_ckpt_file_read(const char *path, tsr_ckpt_info_t *info, tsr_ckpt_region_t *r, int n);
/* "dir/ckpt-<step>.h5" */
int tsr_ckpt_file_name(const char *dir, long step, char *buf, size_t len);
/* Removes all but the newest keep checkpoints in dir. */
void tsr_ckpt_retain(const char *dir, int keep);
size_t tsr_ckpt_type_size(tsr_ckpt_type_t t);
/* Continues the checksum over the root attributes (format version 2 on),
 * so that a changed step or world size is found like changed data: each
 * attribute's name, length and value, in a fixed order. file.c */
uint32_t tsr_ckpt_crc_attrs(uint32_t crc, const tsr_ckpt_meta_t *meta, const char *created, const char *list);
/* The integer root attributes, in the order the file and its checksum
 * list them: fills out[TSR_CKPT_NINTS]. file.c */
enum { TSR_CKPT_NINTS = 6 };
typedef struct tsr_ckpt_int_attr {
    const char *name;
    long long v;
} tsr_ckpt_int_attr_t;
void tsr_ckpt_int_attrs(const tsr_ckpt_meta_t *meta, tsr_ckpt_int_attr_t *out);
/* The HDF5 type of t: in the file (little-endian), or in memory if native. */
hid_t tsr_ckpt_h5_type(tsr_ckpt_type_t t, int native);

#endif
