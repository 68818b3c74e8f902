// placeholder: being written
#include "payload.h"
