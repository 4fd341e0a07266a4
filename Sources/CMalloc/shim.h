// glibc's allocator statistics and trimming (mallinfo2, malloc_trim): <malloc.h> is not in
// Swift's Glibc module.
#include <malloc.h>
