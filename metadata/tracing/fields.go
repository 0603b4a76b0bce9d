package tracing

import "github.com/ferryml/ferry/wire"

// strField reads an optional string member of a nested message (absent
// or null: ok false); path names the message in errors.
func strField(m map[string]any, path, name string) (string, bool, *wire.Error) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", false, nil
	}
	s, werr := wire.AsString(path+"."+name, v)
	return s, werr == nil, werr
}

// stringMap reads a map<string,string> member of a nested message
// (proto JSON object form); keys and values pass CheckText.
func stringMap(m map[string]any, path, name string) (map[string]string, *wire.Error) {
	v, ok := m[name]
	if !ok || v == nil {
		return nil, nil
	}
	field := path + "." + name
	obj, werr := wire.AsObject(field, v)
	if werr != nil {
		return nil, werr
	}
	out := make(map[string]string, len(obj))
	for k, x := range obj {
		if werr := wire.CheckText(field, k); werr != nil {
			return nil, werr
		}
		s, werr := wire.AsString(field+"."+k, x)
		if werr != nil {
			return nil, werr
		}
		out[k] = s
	}
	return out, nil
}
