#include "common/h5mem.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

/* The core driver asks these for its memory; all of them hand out img. */
static void *grow(tsr_h5_image_t *img, size_t size)
{
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

static void *udata_copy(void *udata)
{
    return udata;
}

static herr_t udata_free(void *udata)
{
    (void)udata;
    return 0;
}

hid_t tsr_h5_mem_create(tsr_h5_image_t *img, size_t expected_bytes)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* One growth step big enough for the data plus metadata. */
    size_t inc = expected_bytes + expected_bytes / 64 + (1 << 20);
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, image_realloc, image_free,
                                      udata_copy,   udata_free,   img};
    img->len = 0;
    if (fapl < 0 || H5Pset_fapl_core(fapl, inc, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return -1;
    }
    /* The name only labels the in-memory file. */
    hid_t f = H5Fcreate("tessera-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int tsr_h5_mem_finish(hid_t f, const char *path, tsr_h5_image_t *img)
{
    ssize_t size = -1;
    img->len = 0;
    /* The end of allocated space (EOA), which H5Fget_file_image reports when
     * asked for no copy; the core driver's EOF is rounded up to its growth
     * step and the rest is padding. */
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || (size = H5Fget_file_image(f, NULL, 0)) <= 0 ||
        (size_t)size > img->cap) {
        H5Fclose(f);
        return tsr_error_set(TSR_EIO, "%s: building the HDF5 image in memory failed", path);
    }
    if (H5Fclose(f) < 0)
        return tsr_error_set(TSR_EIO, "%s: closing the in-memory HDF5 image failed", path);
    img->len = (size_t)size;
    return TSR_OK;
}

void tsr_h5_image_free(tsr_h5_image_t *img)
{
    if (!img)
        return;
    free(img->buf);
    img->buf = NULL;
    img->cap = img->len = 0;
}
