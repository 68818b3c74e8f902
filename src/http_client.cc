// placeholder: being written
#include "http_client.h"
