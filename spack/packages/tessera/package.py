# SPDX-License-Identifier: BSD-3-Clause
# tessera's Spack recipe (spack/ in the tessera sources is a Spack package
# repository: `spack repo add spack`). Follows the conventions of Spack's
# Aluminum and Caliper packages: CMakePackage, variants mapped one to one to
# the project's CMake options with define_from_variant, and a stand-alone
# test that trains on two MPI ranks (`spack test run tessera`).
#
# tests/e2e/test_spack.sh checks this file against CMakeLists.txt without
# Spack: it parses, every -D option exists in the CMake files, every variant
# maps to one, and the versions match the project's.

import os

from spack.package import *


class Tessera(CMakePackage, CudaPackage):
    """An MPI-native batch framework for supercomputers: one program, started
    by srun, sbatch or mpirun on every rank, trains models data-parallel with
    a deterministic bucketed allreduce, writes HDF5 checkpoints and resumes
    after a failure or a SLURM requeue, and serves predictions over HTTP."""

    # tessera has no public release server yet: point git at your site's
    # mirror of the repository, or build a clone in place with
    # `spack develop --path /path/to/tessera tessera@main`.
    git = "file:///opt/src/tessera"

    version("main", branch="main")
    version("0.1.0", tag="v0.1.0")

    # Optional back-ends; each is CMake's TESSERA_WITH_<NAME> (AUTO|ON|OFF).
    # cuda (and cuda_arch) come from CudaPackage.
    variant("nccl", default=False, description="Reduce gradients on GPUs with NCCL")
    variant("papi", default=False, description="Count hardware events with PAPI")
    variant("slurm", default=True, description="Job facts, walltime and tessera submit through libslurm")
    variant("onednn", default=True, description="Run the CPU GEMMs with oneDNN's JIT SGEMM (AVX-512 where the CPU has it)")

    depends_on("c", type="build")
    depends_on("cmake@3.18:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("mpi")
    depends_on("hdf5+mpi")
    depends_on("hwloc@2:")
    # The CPU kernels call CBLAS and openblas_set_num_threads().
    depends_on("openblas threads=pthreads")
    depends_on("inih")
    depends_on("libmicrohttpd@0.9.71:")
    depends_on("jansson")
    depends_on("protobuf-c", type=("build", "link"))  # protoc-c at build time
    depends_on("zlib-api")
    depends_on("cmocka", type="test")

    depends_on("slurm", when="+slurm")
    depends_on("papi", when="+papi")
    # OpenMP threading: tessera sets the thread count per rank.
    depends_on("onednn cpu_runtime=omp", when="+onednn")
    depends_on("nccl", when="+nccl")
    requires("+cuda", when="+nccl", msg="NCCL reduces on GPUs: build with +cuda")

    # Back-ends that tessera's CMake refuses (ON) until they are built.
    conflicts("+cuda", when="@:0.1.0", msg="the CUDA back-end is not in tessera 0.1.0")
    conflicts("+nccl", when="@:0.1.0", msg="the NCCL back-end is not in tessera 0.1.0")
    conflicts("+papi", when="@:0.1.0", msg="PAPI counters are not in tessera 0.1.0")
    conflicts("+onednn", when="@:0.1.0", msg="the oneDNN GEMM is not in tessera 0.1.0")

    def cmake_args(self):
        args = [
            self.define_from_variant("TESSERA_WITH_CUDA", "cuda"),
            self.define_from_variant("TESSERA_WITH_NCCL", "nccl"),
            self.define_from_variant("TESSERA_WITH_PAPI", "papi"),
            self.define_from_variant("TESSERA_WITH_SLURM", "slurm"),
            self.define_from_variant("TESSERA_WITH_ONEDNN", "onednn"),
            # Release builds must not fail on a newer compiler's new warnings.
            self.define("TESSERA_WERROR", False),
            self.define("TESSERA_SANITIZE_TESTS", False),
            # The CPU CUDA emulator's copies of the GPU tests: for the
            # project's own CI, not for checking an installation.
            self.define("TESSERA_CUDA_EMU_TESTS", False),
            self.define("BUILD_TESTING", self.run_tests),
        ]
        if self.spec.satisfies("+slurm"):
            args.append(self.define("SLURM_ROOT", self.spec["slurm"].prefix))
        if self.spec.satisfies("+onednn"):
            args.append(self.define("DNNL_ROOT", self.spec["onednn"].prefix))
        if self.spec.satisfies("+nccl"):
            args.append(self.define("NCCL_ROOT", self.spec["nccl"].prefix))
        if self.spec.satisfies("+cuda"):
            archs = self.spec.variants["cuda_arch"].value
            if archs and archs[0] != "none":
                args.append(self.define("CMAKE_CUDA_ARCHITECTURES", ";".join(archs)))
        return args

    @run_after("install")
    def cache_test_sources(self):
        """Keep the digits example (config and data) for the stand-alone test."""
        cache_extra_test_sources(self, ["examples/digits.ini", "examples/data/digits.h5"])

    def test_train(self):
        """train the bundled digits model on 2 MPI ranks and check the model file"""
        examples = join_path(self.test_suite.current_test_cache_dir, "examples")
        launcher = None
        for name in ("mpiexec", "mpirun", "srun"):
            path = join_path(self.spec["mpi"].prefix.bin, name)
            if os.path.exists(path):
                launcher = which(path)
                break
        if launcher is None:
            launcher = which("mpiexec") or which("srun")
        tessera = join_path(self.prefix.bin, "tessera")
        with working_dir(examples):
            out = launcher(
                "-n", "2", tessera, "train", "digits.ini",
                "--set", "train.epochs=2", "--set", "train.output=spack-test-model.h5",
                "--set", "runtime.progress=lines", "--set", "checkpoint.final=false",
                output=str.split, error=str.split,
            )
            assert "done:" in out and "2 ranks" in out, out
            assert os.path.exists("spack-test-model.h5")
