#pragma once

#include "yd_base.h"

namespace yd
{
// Records message for yd_last_error() and returns status.
int32_t fail(int32_t status, char const* message);
int32_t succeed();
} // namespace yd
