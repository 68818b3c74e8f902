// placeholder: being written
#include "delivery.h"
