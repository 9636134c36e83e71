// The CUDA backend (libmmsb_kernels): builds when nvcc is found (MMSB_WITH_CUDA). MakeCudaBackend
// fails with Unsupported when the library was built without CUDA or the machine has no usable
// device or driver; MakeDefaultBackend falls back to the CPU reference backend then.
//
// Ownership: the factories return backends the caller owns; hand them to mmsb::AttachDevice as a
// shared_ptr. Thread-safety: see mmsb/device.h (a backend is not thread-safe).
#pragma once

#include <memory>

#include "mmsb/device.h"
#include "mmsb/status.h"

namespace mmsb {

struct CudaBackendOptions {
  int device = 0;
};

// True when libmmsb_kernels was built with CUDA kernels.
bool CudaBuilt();
// The CUDA backend on `options.device`. Unsupported without CUDA support, a device or a
// driver (the message says which).
Expected<std::unique_ptr<DeviceBackend>> MakeCudaBackend(const CudaBackendOptions& options = {});
// The CUDA backend when one can be made, else the CPU reference backend.
std::unique_ptr<DeviceBackend> MakeDefaultBackend();

}  // namespace mmsb
