// The entry point of a runtime layer check (runtime/CMakeLists.txt): the executable links one
// folder's objects with those of the folders below it, so a call into a higher layer fails to
// link. It is never run.
int main() { return 0; }
