// placeholder: being written
#include "spool_io.h"
