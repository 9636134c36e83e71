// A system header with an error, for shared-preamble.cpp: the preamble's build fails, and the
// compile must report the error exactly as it does without a preamble.
#pragma once
int broken_sys_value = undeclared_in_broken_sys;
