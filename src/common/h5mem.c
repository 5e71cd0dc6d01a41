/* SPDX-License-Identifier: BSD-3-Clause */
#include "common/h5mem.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

/* The core driver asks these for its memory; all of them hand out img. */
static void *grow(tsr_h5_image_t *img, size_t size)
{
    /* The core driver zeroes what it adds beyond its old size, so the
     * reused buffer's old contents never reach a file. */
    img->mem = size;
    if (size > img->cap) {
        unsigned char *nb = realloc(img->buf, size);
        if (!nb)
            return NULL;
        img->buf = nb;
        img->cap = size;
    }
    return img->buf;
}

static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    return grow(udata, size);
}

static void *image_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)ptr;
    (void)op;
    return grow(udata, size);
}

static void *image_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata)
{
    (void)op;
    (void)udata;
    return memcpy(dest, src, size);
}

static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata)
{
    /* Kept for the next file; tsr_h5_image_free releases it. */
    (void)ptr;
    (void)op;
    (void)udata;
    return 0;
}

static void *udata_copy(void *udata) { return udata; }

static herr_t udata_free(void *udata)
{
    (void)udata;
    return 0;
}

static hid_t create(tsr_h5_image_t *img, size_t inc, size_t meta_block)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free, udata_copy,
                                      udata_free,   img};
    img->len = img->mem = 0;
    if (fapl < 0 || H5Pset_fapl_core(fapl, inc, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        (meta_block && H5Pset_meta_block_size(fapl, meta_block) < 0)) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return -1;
    }
    /* The name only labels the in-memory file. */
    hid_t f = H5Fcreate("tessera-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

hid_t tsr_h5_mem_create(tsr_h5_image_t *img, size_t expected_bytes)
{
    /* One growth step big enough for the data plus metadata. */
    return create(img, expected_bytes + expected_bytes / 64 + (1 << 20), 0);
}

hid_t tsr_h5_mem_create_sparse(tsr_h5_image_t *img, size_t increment, size_t meta_block)
{
    return create(img, increment, meta_block);
}

int tsr_h5_mem_finish(hid_t f, const char *path, tsr_h5_image_t *img)
{
    ssize_t size = -1;
    img->len = 0;
    /* The end of allocated space (EOA), which H5Fget_file_image reports when
     * asked for no copy; the core driver's EOF is rounded up to its growth
     * step and the rest is padding. */
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (size = H5Fget_file_image(f, NULL, 0)) <= 0 || (size_t)size > img->cap) {
        H5Fclose(f);
        return tsr_error_set(TSR_EIO, "%s: building the HDF5 image in memory failed", path);
    }
    if (H5Fclose(f) < 0)
        return tsr_error_set(TSR_EIO, "%s: closing the in-memory HDF5 image failed", path);
    img->len = (size_t)size;
    return TSR_OK;
}

/* The end-of-file address the superblock at buf[0] records (superblock
 * versions 0 to 3, no user block), or 0 if it cannot be read. */
static size_t stored_eof(const tsr_h5_image_t *img)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = img->buf;
    if (img->mem < 64 || memcmp(b, sig, 8) != 0 || b[8] > 3)
        return 0;
    /* Size of offsets, and where the base address sits; the end-of-file
     * address is the third address from there in every version. */
    size_t o = b[8] <= 1 ? b[13] : b[9], base = b[8] == 0 ? 24 : b[8] == 1 ? 28 : 12;
    size_t at = base + 2 * o;
    if (o < 2 || o > 8 || at + o > img->mem)
        return 0;
    unsigned long long eof = 0, start = 0;
    for (size_t k = o; k-- > 0;) {
        eof = eof << 8 | b[at + k];
        start = start << 8 | b[base + k];
    }
    return start == 0 ? (size_t)eof : 0;
}

int tsr_h5_mem_close_sparse(hid_t f, const char *path, tsr_h5_image_t *img)
{
    /* No H5Fflush: flushing makes the core driver extend its memory to the
     * end of allocated space (zeroing all of it), which is what this mode
     * avoids. The end of allocated space before closing bounds the file;
     * closing may give back unused space at the end, and the superblock
     * then records the smaller end, which is the file's size. */
    ssize_t size = H5Fget_file_image(f, NULL, 0);
    img->len = 0;
    if (H5Fclose(f) < 0 || size <= 0)
        return tsr_error_set(TSR_EIO, "%s: building the HDF5 image in memory failed", path);
    size_t eof = stored_eof(img);
    img->len = eof > 0 && eof <= (size_t)size ? eof : (size_t)size;
    return TSR_OK;
}

void tsr_h5_image_free(tsr_h5_image_t *img)
{
    if (!img)
        return;
    free(img->buf);
    img->buf = NULL;
    img->cap = img->len = img->mem = 0;
}
