/* The reference for bench/allreduce.sh: MPI_Allreduce (sum, in place) of float buffers, the same
 * sizes and the same output as allreduce_bench (bytes, rounds, median and minimum seconds,
 * GB/s = bytes / median). Built by the script with mpicc; the trainer never links MPI.
 *   mpirun -np 2 mpi_allreduce [SECONDS] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void measure(long bytes, double budget, int rank) {
  long n = bytes / 4;
  float* buf = malloc((size_t)bytes);
  double* times = malloc(sizeof(double) * 2000);
  int rounds = 0;
  for (long i = 0; i < n; ++i) buf[i] = 1.0f;
  for (int i = 0; i < 3; ++i) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double start = MPI_Wtime();
  for (;;) {
    int go = rounds < 5 || (MPI_Wtime() - start < budget && rounds < 2000);
    MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!go) break;
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    times[rounds++] = MPI_Wtime() - t0;
  }
  qsort(times, (size_t)rounds, sizeof(double), cmp);
  if (rank == 0)
    printf("%ld %d %g %g %g\n", bytes, rounds, times[rounds / 2], times[0],
           (double)bytes / times[rounds / 2] / 1e9);
  fflush(stdout);
  free(buf);
  free(times);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  double budget = argc > 1 ? atof(argv[1]) : 0.5;
  if (rank == 0) printf("# backend mpi, %d ranks\n", size);
  for (long b = 1024; b <= (64L << 20); b *= 4) {
    measure(b, budget, rank);
    if (b == (16L << 20)) measure(25L << 20, budget, rank);
  }
  MPI_Finalize();
  return 0;
}
