#include "common.h"
int Removed(int x) { return x - 7; }
int RenamedOld(int x, int y) { return x * y + Shared(y); }
int KeepB(int x) { return Shared(x) + 2; }
