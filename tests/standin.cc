// placeholder
#include "standin.h"
