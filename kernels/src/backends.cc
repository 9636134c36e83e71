// Backend factories: the CUDA backend when built with it and a device answers, else the CPU
// reference.
#include <cstdio>

#include "mmsb/kernels.h"

namespace mmsb {

#if MMSB_HAVE_CUDA
namespace cuda {
Expected<std::unique_ptr<DeviceBackend>> MakeBackend(const CudaBackendOptions& options);
}  // namespace cuda
#endif

bool CudaBuilt() { return MMSB_HAVE_CUDA != 0; }

Expected<std::unique_ptr<DeviceBackend>> MakeCudaBackend(const CudaBackendOptions& options) {
#if MMSB_HAVE_CUDA
  return cuda::MakeBackend(options);
#else
  (void)options;
  return Unsupported(
      "libmmsb_kernels was built without CUDA (MMSB_WITH_CUDA=OFF: no working nvcc, or a sanitizer "
      "build)");
#endif
}

std::unique_ptr<DeviceBackend> MakeDefaultBackend() {
  auto cuda = MakeCudaBackend();
  if (cuda.ok()) return std::move(*cuda);
  return std::make_unique<CpuBackend>();
}

}  // namespace mmsb
