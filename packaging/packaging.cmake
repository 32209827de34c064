# The Debian package: scripts/package runs `cpack -G DEB` with this configuration.
#   cluster-runner_<project version>_amd64.deb, everything under /usr.
# Depends: the shared libraries the programs link (LibTorch for the trainer, OpenMPI, yaml-cpp,
# spdlog, fmt, Boost.Program_options, zlib, the C++ runtime), found by dpkg-shlibdeps.
# Recommends: what the runner runs as programs or the templates call (mpirun; eu-stack or gdb
# for the stacks of hung workers; OpenBLAS, without which LibTorch's CPU matrix products are ~18x
# slower). Suggests: Slurm's client, the Fashion-MNIST data of configs/fashion_mnist.yaml.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cluster-runner)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR cluster-runner)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "SLURM-aware launcher for data-parallel training jobs, with a LibTorch trainer")
set(CPACK_PACKAGE_DESCRIPTION
    "One runner per node reads the scheduler's environment (Slurm, OpenMPI's mpirun, torchrun-style variables or one workstation), agrees with the other nodes on hosts, ranks and world size, starts one worker per GPU or CPU slot and supervises them, with one log directory per job. The bundled trainer is the native worker: data-parallel training on LibTorch. Includes sbatch templates, example configs and an environment-modules file under /usr/share/cluster-runner.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES OFF)  # the install strips debug information only (RUNNER_INSTALL_STRIP_DEBUG)
set(RUNNER_PACKAGE_MAINTAINER "cluster-runner maintainers <cluster-runner@localhost>"
    CACHE STRING "The Debian package's Maintainer field")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${RUNNER_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openmpi-bin, elfutils | gdb, libopenblas0-pthread")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "slurm-client, dataset-fashion-mnist, environment-modules")
include(CPack)
