#include <mmsb/mmsb.h>

int main() { return mmsb::started() ? 1 : 0; }
