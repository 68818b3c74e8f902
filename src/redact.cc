// placeholder: being written
#include "redact.h"
