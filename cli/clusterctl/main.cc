#include <iostream>

#include "cli.h"

int main(int argc, char** argv) { return cairn::clusterctl::Main(argc, argv, std::cout, std::cerr); }
