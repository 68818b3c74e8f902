#include "testing.h"

int main(int argc, char** argv) { return xmtest::run(argc, argv, {}); }
