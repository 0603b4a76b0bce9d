package serve

import "strings"

// textPlainNames are the extensions (and extension-less file names) that
// upstream MLflow always serves as text/plain (mlflow/utils/mime_type_utils).
var textPlainNames = map[string]bool{
	"txt": true, "log": true, "err": true, "cfg": true, "conf": true, "cnf": true, "cf": true,
	"ini": true, "properties": true, "prop": true, "hocon": true, "toml": true, "yaml": true,
	"yml": true, "xml": true, "json": true, "js": true, "py": true, "py3": true, "csv": true,
	"tsv": true, "md": true, "rst": true, "MLmodel": true, "mlproject": true,
}

// pythonTypes is the part of Python's mimetypes default table that artifact
// names meet. Go's mime package differs from it (and appends charsets), so
// Ferry carries its own copy and always sends the bare type.
var pythonTypes = map[string]string{
	".a": "application/octet-stream", ".ai": "application/postscript", ".aif": "audio/x-aiff",
	".aifc": "audio/x-aiff", ".aiff": "audio/x-aiff", ".au": "audio/basic", ".avi": "video/x-msvideo",
	".avif": "image/avif", ".bat": "text/plain", ".bcpio": "application/x-bcpio", ".bin": "application/octet-stream",
	".bmp": "image/bmp", ".c": "text/plain", ".cdf": "application/x-netcdf", ".cpio": "application/x-cpio",
	".csh": "application/x-csh", ".css": "text/css", ".csv": "text/csv", ".dll": "application/octet-stream",
	".doc": "application/msword", ".dot": "application/msword", ".dvi": "application/x-dvi",
	".eml": "message/rfc822", ".eps": "application/postscript", ".etx": "text/x-setext",
	".exe": "application/octet-stream", ".gif": "image/gif", ".gtar": "application/x-gtar",
	".h": "text/plain", ".h5": "application/x-hdf5", ".hdf": "application/x-hdf", ".heic": "image/heic",
	".heif": "image/heif", ".htm": "text/html", ".html": "text/html", ".ico": "image/vnd.microsoft.icon",
	".ief": "image/ief", ".jpe": "image/jpeg", ".jpeg": "image/jpeg", ".jpg": "image/jpeg",
	".js": "text/javascript", ".json": "application/json", ".ksh": "text/plain", ".latex": "application/x-latex",
	".m1v": "video/mpeg", ".m3u": "application/vnd.apple.mpegurl", ".m3u8": "application/vnd.apple.mpegurl",
	".man": "application/x-troff-man", ".me": "application/x-troff-me", ".mht": "message/rfc822",
	".mhtml": "message/rfc822", ".mif": "application/x-mif", ".mjs": "text/javascript", ".mov": "video/quicktime",
	".movie": "video/x-sgi-movie", ".mp2": "audio/mpeg", ".mp3": "audio/mpeg", ".mp4": "video/mp4",
	".mpa": "video/mpeg", ".mpe": "video/mpeg", ".mpeg": "video/mpeg", ".mpg": "video/mpeg",
	".ms": "application/x-troff-ms", ".nc": "application/x-netcdf", ".nws": "message/rfc822",
	".o": "application/octet-stream", ".obj": "application/octet-stream", ".oda": "application/oda",
	".p12": "application/x-pkcs12", ".p7c": "application/pkcs7-mime", ".pbm": "image/x-portable-bitmap",
	".pdf": "application/pdf", ".pfx": "application/x-pkcs12", ".pgm": "image/x-portable-graymap",
	".pl": "text/plain", ".png": "image/png", ".pnm": "image/x-portable-anymap", ".pot": "application/vnd.ms-powerpoint",
	".ppa": "application/vnd.ms-powerpoint", ".ppm": "image/x-portable-pixmap", ".pps": "application/vnd.ms-powerpoint",
	".ppt": "application/vnd.ms-powerpoint", ".ps": "application/postscript", ".pwz": "application/vnd.ms-powerpoint",
	".py": "text/x-python", ".pyc": "application/x-python-code", ".pyo": "application/x-python-code",
	".qt": "video/quicktime", ".ra": "audio/x-pn-realaudio", ".ram": "application/x-pn-realaudio",
	".ras": "image/x-cmu-raster", ".rdf": "application/xml", ".rgb": "image/x-rgb", ".roff": "application/x-troff",
	".rtx": "text/richtext", ".sgm": "text/x-sgml", ".sgml": "text/x-sgml", ".sh": "application/x-sh",
	".shar": "application/x-shar", ".snd": "audio/basic", ".so": "application/octet-stream",
	".src": "application/x-wais-source", ".sv4cpio": "application/x-sv4cpio", ".sv4crc": "application/x-sv4crc",
	".svg": "image/svg+xml", ".swf": "application/x-shockwave-flash", ".t": "application/x-troff",
	".tar": "application/x-tar", ".tcl": "application/x-tcl", ".tex": "application/x-tex",
	".texi": "application/x-texinfo", ".texinfo": "application/x-texinfo", ".tif": "image/tiff",
	".tiff": "image/tiff", ".tr": "application/x-troff", ".tsv": "text/tab-separated-values",
	".txt": "text/plain", ".ustar": "application/x-ustar", ".vcf": "text/x-vcard", ".wasm": "application/wasm",
	".wav": "audio/x-wav", ".webm": "video/webm", ".webmanifest": "application/manifest+json",
	".webp": "image/webp", ".wiz": "application/msword", ".wsdl": "application/xml", ".xbm": "image/x-xbitmap",
	".xlb": "application/vnd.ms-excel", ".xls": "application/vnd.ms-excel", ".xml": "text/xml",
	".xpdl": "application/xml", ".xpm": "image/x-xpixmap", ".xsl": "application/xml", ".xwd": "image/x-xwindowdump",
	".zip": "application/zip", ".mpga": "audio/mpeg", ".opus": "audio/opus", ".oga": "audio/ogg",
	".ogg": "audio/ogg", ".ogv": "video/ogg", ".otf": "font/otf", ".ttf": "font/ttf", ".woff": "font/woff",
	".woff2": "font/woff2", ".rtf": "application/rtf", ".md": "text/markdown", ".markdown": "text/markdown",
}

// pythonSuffixes and pythonEncodings mirror mimetypes.suffix_map and
// encodings_map: "x.tgz" is "x.tar.gz", and a compression suffix is peeled
// off before the type is looked up (so "m.tar.gz" is application/x-tar and
// "m.gz" has no type).
var pythonSuffixes = map[string]string{
	".svgz": ".svg.gz", ".tgz": ".tar.gz", ".taz": ".tar.gz", ".tz": ".tar.gz", ".tbz2": ".tar.bz2", ".txz": ".tar.xz",
}

var pythonEncodings = map[string]bool{".gz": true, ".Z": true, ".bz2": true, ".xz": true, ".br": true}

// GuessMimeType is upstream's _guess_mime_type for a file name: the
// text/plain list first, then Python's mimetypes, else
// application/octet-stream.
func GuessMimeType(name string) string {
	base := name
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	ext := base
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		ext = base[i+1:]
	}
	if textPlainNames[ext] {
		return "text/plain"
	}
	if t := pythonGuess(base); t != "" {
		return t
	}
	return "application/octet-stream"
}

func pythonGuess(base string) string {
	stem, ext := splitExt(base)
	for {
		s, ok := pythonSuffixes[ext]
		if !ok {
			s, ok = pythonSuffixes[strings.ToLower(ext)]
		}
		if !ok {
			break
		}
		stem, ext = splitExt(stem + s)
	}
	if pythonEncodings[ext] || pythonEncodings[strings.ToLower(ext)] {
		stem, ext = splitExt(stem)
	}
	if t, ok := pythonTypes[ext]; ok {
		return t
	}
	return pythonTypes[strings.ToLower(ext)]
}

// splitExt is Python's posixpath.splitext: leading dots are not an
// extension (".bashrc" has none).
func splitExt(p string) (string, string) {
	i := strings.LastIndexByte(p, '.')
	if i <= 0 {
		return p, ""
	}
	if strings.Trim(p[:i], ".") == "" {
		return p, ""
	}
	return p[:i], p[i:]
}
