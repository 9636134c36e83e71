#pragma once
extern "C" int printf(const char*, ...);
inline int Shared(int x) { return x * 3 + 1; }
