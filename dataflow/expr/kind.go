package expr

import "reflect"

var stringKind = reflect.String
