package schema

// Type is a column type, rendered per dialect by columnType.
type Type int

// Column types, named after SQLAlchemy's generic types that upstream uses.
const (
	Integer Type = iota + 1
	BigInt
	Varchar    // VARCHAR(Len)
	Text       // TEXT
	MediumText // MEDIUMTEXT on MySQL, TEXT elsewhere
	Double     // Float(precision=53): DOUBLE PRECISION / DOUBLE / FLOAT
	Boolean    // BOOLEAN; TINYINT on MySQL
	Blob       // LargeBinary: BYTEA / BLOB
	JSON
)

// Column is one table column.
type Column struct {
	Name    string
	Type    Type
	Len     int // for Varchar
	NotNull bool
	// Default is the server default: a string (quoted literal), an int64
	// or a bool. nil means none.
	Default any
	// AutoIncrement marks experiments.experiment_id (SERIAL on
	// PostgreSQL, AUTO_INCREMENT on MySQL, rowid alias on SQLite).
	AutoIncrement bool
	// Generated is a STORED generated-column expression over other
	// columns of the row, or "".
	Generated string
}

// ForeignKey is a foreign-key constraint. An empty Name leaves naming to
// the database, as upstream's oldest tables do (PostgreSQL then calls it
// <table>_<col>_fkey, MySQL <table>_ibfk_<n>).
type ForeignKey struct {
	Name       string
	Columns    []string
	RefTable   string
	RefColumns []string
	OnDelete   string // "", "CASCADE", "SET NULL"
	OnUpdate   string // "", "CASCADE"
}

// Check is a CHECK constraint over one column's allowed values. Empty Name
// means unnamed.
type Check struct {
	Name   string
	Column string
	Values []string // string literals; nil with Bool for is_nan-style checks
	Bool   bool     // IN (0, 1); only emitted where booleans are integers
}

// Unique is a named UNIQUE table constraint.
type Unique struct {
	Name    string
	Columns []string
}

// Index is a named secondary index.
type Index struct {
	Name    string
	Columns []string
	Unique  bool
}

// Table is one table at the head revision.
type Table struct {
	Name    string
	Columns []Column
	PKName  string
	PK      []string
	FKs     []ForeignKey
	Uniques []Unique
	Checks  []Check
	Indexes []Index
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Lookup returns the head table with this name, or nil.
func Lookup(name string) *Table {
	for i := range headTables {
		if headTables[i].Name == name {
			return &headTables[i]
		}
	}
	return nil
}

// Tables returns the head model in creation order (referenced tables
// first). The slice is shared: callers must not modify it.
func Tables() []Table { return headTables }
