# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the scripts: lets Open MPI run as root and oversubscribe small machines.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=1
