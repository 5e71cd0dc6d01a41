/* SPDX-License-Identifier: BSD-3-Clause */
/* Debian's parallel HDF5 is not built thread-safe: every HDF5 call in the
 * library runs under this one lock (the data prefetch thread and checkpoint
 * writer call HDF5 off the main thread). HDF5's own error printing is turned
 * off once, since tessera reports errors itself. The lock is recursive. */
#ifndef TSR_COMMON_H5LOCK_H
#define TSR_COMMON_H5LOCK_H

void tsr_h5_lock(void);
void tsr_h5_unlock(void);

#endif
