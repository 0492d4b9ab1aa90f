// libtorch's autocast switches for any device type. tch 0.26 exposes only CUDA's
// (at_autocast_set_enabled), so bf16 autocast on the CPU needs these four lines of C++; they
// only read and write libtorch's thread-local autocast state, and never throw across the FFI.
#include <ATen/autocast_mode.h>

extern "C" {

// Enables (or disables) autocast to `dtype` (a c10::ScalarType) for `device_type` (a
// c10::DeviceType) on this thread and enters one nesting level. Returns 0, or -1 on an error.
int gapscope_autocast_enter(int device_type, int dtype) {
  try {
    auto dev = static_cast<c10::DeviceType>(device_type);
    at::autocast::set_autocast_dtype(dev, static_cast<c10::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(dev, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Leaves a nesting level, restoring the state saved before `gapscope_autocast_enter`; the cast
// weights' cache is dropped when the outermost level ends, as torch.autocast's __exit__ does.
void gapscope_autocast_exit(int device_type, bool was_enabled, int was_dtype) {
  try {
    auto dev = static_cast<c10::DeviceType>(device_type);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(dev, was_enabled);
    at::autocast::set_autocast_dtype(dev, static_cast<c10::ScalarType>(was_dtype));
  } catch (...) {
  }
}

// The state `gapscope_autocast_enter` overwrites: enabled, and the dtype.
bool gapscope_autocast_enabled(int device_type) {
  try {
    return at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type));
  } catch (...) {
    return false;
  }
}

int gapscope_autocast_dtype(int device_type) {
  try {
    return static_cast<int>(at::autocast::get_autocast_dtype(static_cast<c10::DeviceType>(device_type)));
  } catch (...) {
    return -1;
  }
}
}
