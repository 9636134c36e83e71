// libmmsb_kernels: the device backends behind mmsb/device.h. The umbrella over the CPU reference
// backend (mmsb/cpu_backend.h) and the CUDA backend (mmsb/cuda_backend.h).
// Including it includes both.
#pragma once

#include "mmsb/cpu_backend.h"
#include "mmsb/cuda_backend.h"
