// The standard library pieces the lit tests use. The instrumented compile includes
// <mmsb/instrument.h>, which brings <string>, <vector> and <optional> in, so a mock std would
// collide with the real one; this header only names what the tests need.
#pragma once
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <algorithm>

