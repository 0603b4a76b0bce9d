package hdfsdouble

import (
	"fmt"
	"reflect"
	"strings"

	// The client registers Hadoop's generated message types (its protocol
	// packages are internal, so the double reaches them through the
	// registry by their full names, and works on them with protoreflect).
	_ "github.com/colinmarc/hdfs/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fields describes a message to build: field name → value. Values are Go
// scalars (converted to the field's kind), enum value names, nested
// fields, or slices of either for repeated fields.
type fields map[string]any

// newMessage returns an empty message of the registered type name.
func newMessage(name protoreflect.FullName) protoreflect.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		panic(fmt.Sprintf("hdfsdouble: message type %s is not registered: %v", name, err))
	}
	return mt.New()
}

// build makes a message of type name from f.
func build(name protoreflect.FullName, f fields) proto.Message {
	m := newMessage(name)
	fill(m, f)
	return m.Interface()
}

func fill(m protoreflect.Message, f fields) {
	for name, v := range f {
		fd := fieldOf(m, name)
		switch {
		case fd.IsList():
			list := m.Mutable(fd).List()
			rv := reflect.ValueOf(v)
			for i := range rv.Len() {
				list.Append(value(fd, list.NewElement, rv.Index(i).Interface()))
			}
		case fd.Message() != nil:
			fill(m.Mutable(fd).Message(), v.(fields))
		default:
			m.Set(fd, value(fd, nil, v))
		}
	}
}

// value converts v to the value of field fd (an element of it if fd is
// repeated; newElem makes an empty message element).
func value(fd protoreflect.FieldDescriptor, newElem func() protoreflect.Value, v any) protoreflect.Value {
	if fd.Message() != nil {
		e := newElem()
		fill(e.Message(), v.(fields))
		return e
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(v.(bool))
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v.(string))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes(v.([]byte))
	case protoreflect.EnumKind:
		if s, ok := v.(string); ok {
			ev := fd.Enum().Values().ByName(protoreflect.Name(s))
			if ev == nil {
				panic(fmt.Sprintf("hdfsdouble: %s has no value %s", fd.Enum().FullName(), s))
			}
			return protoreflect.ValueOfEnum(ev.Number())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(toInt(v)))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(toInt(v)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(toInt(v))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(toInt(v)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(toInt(v)))
	}
	panic(fmt.Sprintf("hdfsdouble: unsupported kind %v of %s", fd.Kind(), fd.FullName()))
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	}
	panic(fmt.Sprintf("hdfsdouble: %T is not an integer", v))
}

func fieldOf(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("hdfsdouble: %s has no field %s", m.Descriptor().FullName(), name))
	}
	return fd
}

// sub follows a dotted path of message fields; ok is false when one of
// them is unset.
func sub(m protoreflect.Message, path string) (protoreflect.Message, bool) {
	for _, name := range strings.Split(path, ".") {
		fd := fieldOf(m, name)
		if !m.Has(fd) {
			return nil, false
		}
		m = m.Get(fd).Message()
	}
	return m, true
}

// get reads a scalar field (its default when unset).
func get(m protoreflect.Message, name string) protoreflect.Value { return m.Get(fieldOf(m, name)) }

func getString(m protoreflect.Message, name string) string {
	fd := fieldOf(m, name)
	if fd.Kind() == protoreflect.BytesKind {
		return string(m.Get(fd).Bytes())
	}
	return m.Get(fd).String()
}

func getUint(m protoreflect.Message, name string) uint64 {
	v := get(m, name)
	switch fieldOf(m, name).Kind() {
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return v.Uint()
	}
	return uint64(v.Int())
}

func getInt(m protoreflect.Message, name string) int64 {
	v := get(m, name)
	switch fieldOf(m, name).Kind() {
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Fixed32Kind, protoreflect.Fixed64Kind:
		return int64(v.Uint())
	}
	return v.Int()
}

func getEnum(m protoreflect.Message, name string) string {
	fd := fieldOf(m, name)
	ev := fd.Enum().Values().ByNumber(m.Get(fd).Enum())
	if ev == nil {
		return fmt.Sprint(m.Get(fd).Enum())
	}
	return string(ev.Name())
}
