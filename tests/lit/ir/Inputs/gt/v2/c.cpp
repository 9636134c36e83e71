#include "common.h"
int KeepC(int x) { return Shared(x) * Shared(x + 1); }
