// Thin OpenMP helpers so the rest of the core compiles with or without OpenMP.
#pragma once
#ifdef CRYSPEXT_OPENMP
#include <omp.h>
#endif

namespace cryspext {

inline int max_threads() {
#ifdef CRYSPEXT_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline int thread_id() {
#ifdef CRYSPEXT_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

}  // namespace cryspext
