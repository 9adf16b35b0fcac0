#include "cairn/supervisor/clusterd.h"

int main(int argc, char** argv) { return cairn::supervisor::ClusterdMain(argc, argv); }
