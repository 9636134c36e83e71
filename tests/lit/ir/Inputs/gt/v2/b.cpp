// Version 2 of b.cpp: these comment lines shift everything below.
//
//
#include "common.h"
int Added(int x) { return x / 3; }
int RenamedNew(int x, int y) { return x * y + Shared(y); }
int KeepB(int x) { return Shared(x) + 2; }
