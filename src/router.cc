// placeholder: being written
#include "router.h"
