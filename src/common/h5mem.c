#include "common/h5mem.h"
#include "tessera/error.h"

#include <stdlib.h>

hid_t tsr_h5_mem_create(size_t expected_bytes)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    size_t inc = expected_bytes / 4 + (1 << 20);
    if (fapl < 0 || H5Pset_fapl_core(fapl, inc, 0) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return -1;
    }
    /* The name only labels the in-memory file. */
    hid_t f = H5Fcreate("tessera-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int tsr_h5_mem_finish(hid_t f, const char *path, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (H5Fflush(f, H5F_SCOPE_LOCAL) < 0)
        goto fail;
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    if (n <= 0)
        goto fail;
    *buf = malloc((size_t)n);
    if (!*buf) {
        H5Fclose(f);
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory for a %zd-byte file image", path, n);
    }
    if (H5Fget_file_image(f, *buf, (size_t)n) != n)
        goto fail;
    *len = (size_t)n;
    H5Fclose(f);
    return TSR_OK;
fail:
    free(*buf);
    *buf = NULL;
    H5Fclose(f);
    return tsr_error_set(TSR_EIO, "%s: building the HDF5 image in memory failed", path);
}
