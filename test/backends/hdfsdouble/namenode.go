package hdfsdouble

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The namespace lives on disk so that a restarted double still holds what
// was committed before it was killed: each HDFS directory is a directory
// under ns/, each HDFS file a small JSON inode there, and each block a
// file under blocks/. Inodes are replaced by writing a temporary file in
// meta/ and renaming it into place.
type namenode struct {
	ns, blocks, meta string
	dn               *datanodeInfo
	blockSize        int64
	listLimit        int
	deleteDelay      time.Duration
	log              *slog.Logger
	handlers         map[string]handler

	mu sync.Mutex // one namespace operation at a time, like FSNamesystem's lock
}

// datanodeInfo is where clients find the double's only datanode.
type datanodeInfo struct {
	host string
	port int
}

// inode is a file's metadata.
type inode struct {
	ID     uint64     `json:"id"`
	Blocks []blockRef `json:"blocks"`
	// Client holds the lease while the file is under construction.
	Client string `json:"client,omitempty"`
	MTime  int64  `json:"mtime"`
}

type blockRef struct {
	ID  uint64 `json:"id"`
	GS  uint64 `json:"gs"`
	Len int64  `json:"len"`
}

const (
	poolID          = "BP-hdfsdouble"
	generationStamp = 1001
	owner, group    = "ferry", "supergroup"
)

func (ino *inode) length() int64 {
	var n int64
	for _, b := range ino.Blocks {
		n += b.Len
	}
	return n
}

func newNamenode(dir string, dn *datanodeInfo, o Options) (*namenode, error) {
	nn := &namenode{
		ns: filepath.Join(dir, "ns"), blocks: filepath.Join(dir, "blocks"), meta: filepath.Join(dir, "meta"),
		dn: dn, blockSize: o.BlockSize, listLimit: o.ListLimit, deleteDelay: o.BlockDeleteDelay, log: o.Logger,
	}
	for _, d := range []string{nn.ns, nn.blocks, nn.meta} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	nn.handlers = map[string]handler{
		"getServerDefaults":      nn.getServerDefaults,
		"renewLease":             func(protoreflect.Message) (fields, error) { return fields{}, nil },
		"getFileInfo":            nn.locked(nn.getFileInfo),
		"getListing":             nn.locked(nn.getListing),
		"mkdirs":                 nn.locked(nn.mkdirs),
		"create":                 nn.locked(nn.create),
		"addBlock":               nn.locked(nn.addBlock),
		"updateBlockForPipeline": nn.locked(nn.updateBlockForPipeline),
		"complete":               nn.locked(nn.complete),
		"getBlockLocations":      nn.locked(nn.getBlockLocations),
		"rename2":                nn.locked(nn.rename2),
		"delete":                 nn.locked(nn.delete),
		"append":                 nn.locked(nn.appendFile),
	}
	return nn, nil
}

func (nn *namenode) locked(h handler) handler {
	return func(req protoreflect.Message) (fields, error) {
		nn.mu.Lock()
		defer nn.mu.Unlock()
		return h(req)
	}
}

// checkPath applies HDFS's rule for path names (DFSUtil.isValidName):
// absolute, no empty, "." or ".." components, no ':' in a component.
func checkPath(src string) (string, error) {
	if !strings.HasPrefix(src, "/") {
		return "", exception(exInvalidPath, "Invalid path name %s: not absolute", src)
	}
	if src == "/" {
		return src, nil
	}
	src = strings.TrimSuffix(src, "/")
	for _, c := range strings.Split(src[1:], "/") {
		if c == "" || c == "." || c == ".." || strings.Contains(c, ":") || strings.ContainsRune(c, 0) {
			return "", exception(exInvalidPath, "Invalid path name Invalid file name: %s", src)
		}
	}
	return src, nil
}

func (nn *namenode) local(src string) string { return filepath.Join(nn.ns, filepath.FromSlash(src)) }

// lookup finds src: fi is nil when it does not exist (also when a parent
// is a file); ino is set for files.
func (nn *namenode) lookup(src string) (fs.FileInfo, *inode, error) {
	fi, err := os.Lstat(nn.local(src))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return fi, nil, nil
	}
	ino, err := nn.readInode(src)
	return fi, ino, err
}

func (nn *namenode) readInode(src string) (*inode, error) {
	b, err := os.ReadFile(nn.local(src))
	if err != nil {
		return nil, err
	}
	ino := &inode{}
	if err := json.Unmarshal(b, ino); err != nil {
		return nil, fmt.Errorf("inode %s: %w", src, err)
	}
	return ino, nil
}

func (nn *namenode) writeInode(src string, ino *inode) error {
	b, err := json.Marshal(ino)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(nn.meta, "inode-")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), nn.local(src))
}

// checkParent requires src's parent to be an existing directory.
func (nn *namenode) checkParent(src string) error {
	parent := path.Dir(src)
	fi, _, err := nn.lookup(parent)
	if err != nil {
		return err
	}
	if fi == nil {
		// A file on the way up is a different error from a missing parent.
		for p := parent; p != "/"; p = path.Dir(p) {
			if fi, _, _ := nn.lookup(p); fi != nil && !fi.IsDir() {
				return exception(exParentNotDir, "Parent path is not a directory: %s", p)
			}
		}
		return exception(exFileNotFound, "Parent directory doesn't exist: %s", parent)
	}
	if !fi.IsDir() {
		return exception(exParentNotDir, "Parent path is not a directory: %s", parent)
	}
	return nil
}

// status describes a file or directory; name is what the status carries
// as its path (empty for getFileInfo, the child's name in listings) and
// local is where it lives on disk.
func (nn *namenode) status(name, local string, fi fs.FileInfo, ino *inode) fields {
	st := fields{
		"path": []byte(name), "owner": owner, "group": group,
		"modification_time": uint64(fi.ModTime().UnixMilli()), "access_time": uint64(fi.ModTime().UnixMilli()),
	}
	if ino == nil {
		st["fileType"] = "IS_DIR"
		st["length"] = uint64(0)
		st["permission"] = fields{"perm": uint32(0o755)}
		st["fileId"] = fileIDOf(fi)
		if entries, err := os.ReadDir(local); err == nil {
			st["childrenNum"] = int32(len(entries))
		}
		return st
	}
	st["fileType"] = "IS_FILE"
	st["length"] = uint64(ino.length())
	st["permission"] = fields{"perm": uint32(0o644)}
	st["block_replication"] = uint32(1)
	st["blocksize"] = uint64(nn.blockSize)
	st["fileId"] = ino.ID
	st["modification_time"] = uint64(ino.MTime)
	st["access_time"] = uint64(ino.MTime)
	return st
}

func fileIDOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (nn *namenode) getServerDefaults(protoreflect.Message) (fields, error) {
	return fields{"serverDefaults": fields{
		"blockSize": uint64(nn.blockSize), "bytesPerChecksum": uint32(chunkSize), "writePacketSize": uint32(64 << 10),
		"replication": uint32(1), "fileBufferSize": uint32(4096), "encryptDataTransfer": false,
		"checksumType": "CHECKSUM_CRC32C",
	}}, nil
}

func (nn *namenode) getFileInfo(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	fi, ino, err := nn.lookup(src)
	if err != nil || fi == nil {
		return fields{}, err
	}
	return fields{"fs": nn.status("", nn.local(src), fi, ino)}, nil
}

func (nn *namenode) getListing(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	fi, ino, err := nn.lookup(src)
	if err != nil || fi == nil {
		return fields{}, err
	}
	if ino != nil {
		return fields{"dirList": fields{"partialListing": []fields{nn.status(path.Base(src), nn.local(src), fi, ino)}, "remainingEntries": uint32(0)}}, nil
	}
	entries, err := os.ReadDir(nn.local(src))
	if err != nil {
		return nil, err
	}
	after := getString(req, "startAfter")
	list := []fields{}
	remaining := 0
	for _, e := range entries { // sorted by name, byte order, as HDFS lists
		if e.Name() <= after {
			continue
		}
		if len(list) == nn.listLimit {
			remaining++
			continue
		}
		child := path.Join(src, e.Name())
		cfi, cino, err := nn.lookup(child)
		if err != nil || cfi == nil {
			continue
		}
		list = append(list, nn.status(e.Name(), nn.local(child), cfi, cino))
	}
	return fields{"dirList": fields{"partialListing": list, "remainingEntries": uint32(remaining)}}, nil
}

func (nn *namenode) mkdirs(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	fi, _, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	if fi != nil {
		if fi.IsDir() {
			return fields{"result": true}, nil
		}
		return nil, exception(exAlreadyExists, "Path is not a directory: %s", src)
	}
	if !get(req, "createParent").Bool() {
		if err := nn.checkParent(src); err != nil {
			return nil, err
		}
	}
	for p := path.Dir(src); p != "/"; p = path.Dir(p) {
		if fi, _, _ := nn.lookup(p); fi != nil && !fi.IsDir() {
			return nil, exception(exParentNotDir, "Parent path is not a directory: %s", p)
		}
	}
	if err := os.MkdirAll(nn.local(src), 0o755); err != nil {
		return nil, err
	}
	return fields{"result": true}, nil
}

const (
	flagCreate    = 1
	flagOverwrite = 2
	flagAppend    = 4
)

func (nn *namenode) create(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	client := getString(req, "clientName")
	flag := getUint(req, "createFlag")
	if flag&flagAppend != 0 {
		return nil, errUnimplemented("create with the APPEND flag")
	}
	fi, ino, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	var garbage []blockRef
	if fi != nil {
		switch {
		case fi.IsDir():
			return nil, exception(exAlreadyExists, "%s already exists as a directory", src)
		case ino.Client != "" && ino.Client != client:
			return nil, exception(exBeingCreated, "failed to create file %s for %s: %s is already the current lease holder", src, client, ino.Client)
		case flag&flagOverwrite == 0:
			return nil, exception(exAlreadyExists, "%s for client %s already exists", src, client)
		}
		garbage = ino.Blocks
	}
	if get(req, "createParent").Bool() {
		if _, err := nn.mkdirs(build("hadoop.hdfs.MkdirsRequestProto", fields{
			"src": path.Dir(src), "masked": fields{"perm": uint32(0o755)}, "createParent": true,
		}).ProtoReflect()); err != nil {
			return nil, err
		}
	} else if err := nn.checkParent(src); err != nil {
		return nil, err
	}
	ino = &inode{ID: randomID(), Client: client, MTime: time.Now().UnixMilli()}
	if err := nn.writeInode(src, ino); err != nil {
		return nil, err
	}
	nn.dropBlocks(garbage)
	fi, _, err = nn.lookup(src)
	if err != nil || fi == nil {
		return nil, fmt.Errorf("created %s but cannot stat it: %v", src, err)
	}
	return fields{"fs": nn.status("", nn.local(src), fi, ino)}, nil
}

// underConstruction finds the file a block call names and checks the
// caller holds its lease.
func (nn *namenode) underConstruction(req protoreflect.Message) (string, *inode, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return "", nil, err
	}
	fi, ino, err := nn.lookup(src)
	if err != nil {
		return "", nil, err
	}
	if fi == nil || ino == nil {
		return "", nil, exception(exFileNotFound, "File does not exist: %s", src)
	}
	if id := getUint(req, "fileId"); id != 0 && id != ino.ID {
		return "", nil, exception(exFileNotFound, "File does not exist: %s (inode %d)", src, id)
	}
	if client := getString(req, "clientName"); ino.Client != client {
		return "", nil, exception(exLeaseExpired, "Client %s does not hold the lease on %s (holder %q)", client, src, ino.Client)
	}
	return src, ino, nil
}

// settle records the datanode's length of the block the client reports
// as finished (the last block of the file).
func (nn *namenode) settle(req protoreflect.Message, field string, ino *inode) error {
	b, ok := sub(req, field)
	if !ok {
		return nil
	}
	id := getUint(b, "blockId")
	if len(ino.Blocks) == 0 || ino.Blocks[len(ino.Blocks)-1].ID != id {
		return exception(exIO, "block %d is not the last block of the file", id)
	}
	reported := int64(getUint(b, "numBytes"))
	var held int64
	if fi, err := os.Stat(nn.blockPath(id)); err == nil {
		held = fi.Size()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// A client that allocated a block and wrote nothing reports 0 bytes
	// for a block the datanode never saw: an empty block, as HDFS has it.
	if reported != held {
		return exception(exIO, "block %d: client reports %d bytes, the datanode holds %d", id, reported, held)
	}
	ino.Blocks[len(ino.Blocks)-1].Len = held
	return nil
}

func (nn *namenode) blockPath(id uint64) string {
	return filepath.Join(nn.blocks, fmt.Sprintf("blk_%d", id))
}

func (nn *namenode) addBlock(req protoreflect.Message) (fields, error) {
	src, ino, err := nn.underConstruction(req)
	if err != nil {
		return nil, err
	}
	if err := nn.settle(req, "previous", ino); err != nil {
		return nil, err
	}
	offset := ino.length()
	b := blockRef{ID: randomID(), GS: generationStamp}
	ino.Blocks = append(ino.Blocks, b)
	if err := nn.writeInode(src, ino); err != nil {
		return nil, err
	}
	return fields{"block": nn.located(b, offset)}, nil
}

func (nn *namenode) located(b blockRef, offset int64) fields {
	return fields{
		"b":      fields{"poolId": poolID, "blockId": b.ID, "generationStamp": b.GS, "numBytes": uint64(b.Len)},
		"offset": uint64(offset),
		"locs": []fields{{"id": fields{
			"ipAddr": nn.dn.host, "hostName": nn.dn.host, "datanodeUuid": "hdfsdouble-datanode",
			"xferPort": uint32(nn.dn.port), "infoPort": uint32(0), "ipcPort": uint32(0),
		}}},
		"corrupt":    false,
		"blockToken": fields{"identifier": []byte{}, "password": []byte{}, "kind": "", "service": ""},
	}
}

// updateBlockForPipeline is how this client version closes each block:
// it answers with the block unchanged (the double never recovers
// pipelines, so there is no new generation stamp to hand out).
func (nn *namenode) updateBlockForPipeline(req protoreflect.Message) (fields, error) {
	b, ok := sub(req, "block")
	if !ok {
		return nil, exception(exIO, "updateBlockForPipeline without a block")
	}
	return fields{"block": nn.located(blockRef{ID: getUint(b, "blockId"), GS: getUint(b, "generationStamp"), Len: int64(getUint(b, "numBytes"))}, 0)}, nil
}

func (nn *namenode) complete(req protoreflect.Message) (fields, error) {
	src, ino, err := nn.underConstruction(req)
	if err != nil {
		return nil, err
	}
	if err := nn.settle(req, "last", ino); err != nil {
		return nil, err
	}
	ino.Client = ""
	ino.MTime = time.Now().UnixMilli()
	if err := nn.writeInode(src, ino); err != nil {
		return nil, err
	}
	return fields{"result": true}, nil
}

func (nn *namenode) getBlockLocations(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	fi, ino, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	if fi == nil {
		return nil, exception(exFileNotFound, "File does not exist: %s", src)
	}
	if ino == nil {
		return nil, exception(exFileNotFound, "Path is not a file: %s", src)
	}
	from, n := int64(getUint(req, "offset")), int64(getUint(req, "length"))
	var blocks []fields
	var off int64
	for _, b := range ino.Blocks {
		if b.Len > 0 && off+b.Len > from && off < from+n {
			blocks = append(blocks, nn.located(b, off))
		}
		off += b.Len
	}
	return fields{"locations": fields{
		"fileLength": uint64(ino.length()), "blocks": blocks,
		"underConstruction": ino.Client != "", "isLastBlockComplete": ino.Client == "",
	}}, nil
}

func (nn *namenode) rename2(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	dst, err := checkPath(getString(req, "dst"))
	if err != nil {
		return nil, err
	}
	overwrite := get(req, "overwriteDest").Bool()
	sfi, _, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	if sfi == nil {
		return nil, exception(exFileNotFound, "rename source %s is not found.", src)
	}
	if src == "/" || dst == "/" || dst == src || strings.HasPrefix(dst, src+"/") {
		return nil, exception(exIO, "cannot rename %s to %s", src, dst)
	}
	if err := nn.checkParent(dst); err != nil {
		return nil, err
	}
	dfi, dino, err := nn.lookup(dst)
	if err != nil {
		return nil, err
	}
	var garbage []blockRef
	if dfi != nil {
		if !overwrite {
			return nil, exception(exAlreadyExists, "rename destination %s already exists", dst)
		}
		if dfi.IsDir() != sfi.IsDir() {
			return nil, exception(exIO, "rename source %s and destination %s must both be files or both directories", src, dst)
		}
		if dfi.IsDir() {
			if entries, _ := os.ReadDir(nn.local(dst)); len(entries) > 0 {
				return nil, exception(exIO, "rename destination directory is not empty: %s", dst)
			}
			if err := os.Remove(nn.local(dst)); err != nil {
				return nil, err
			}
		} else {
			garbage = dino.Blocks
		}
	}
	// rename(2) replaces a file atomically: readers see the old or the new.
	if err := os.Rename(nn.local(src), nn.local(dst)); err != nil {
		return nil, err
	}
	nn.dropBlocks(garbage)
	return fields{}, nil
}

func (nn *namenode) delete(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	if src == "/" {
		return nil, exception(exIO, "the root directory cannot be deleted")
	}
	fi, ino, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	if fi == nil {
		return fields{"result": false}, nil
	}
	if ino != nil {
		if err := os.Remove(nn.local(src)); err != nil {
			return nil, err
		}
		nn.dropBlocks(ino.Blocks)
		return fields{"result": true}, nil
	}
	entries, err := os.ReadDir(nn.local(src))
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 && !get(req, "recursive").Bool() {
		return nil, exception(exNotEmpty, "`%s is non empty': Directory is not empty", src)
	}
	var garbage []blockRef
	_ = filepath.WalkDir(nn.local(src), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(nn.ns, p)
			if ino, err := nn.readInode("/" + filepath.ToSlash(rel)); err == nil {
				garbage = append(garbage, ino.Blocks...)
			}
		}
		return nil
	})
	if err := os.RemoveAll(nn.local(src)); err != nil {
		return nil, err
	}
	nn.dropBlocks(garbage)
	return fields{"result": true}, nil
}

// appendFile reopens a complete file for writing: the client resumes its
// last block when it has room, else asks for a new one.
func (nn *namenode) appendFile(req protoreflect.Message) (fields, error) {
	src, err := checkPath(getString(req, "src"))
	if err != nil {
		return nil, err
	}
	fi, ino, err := nn.lookup(src)
	if err != nil {
		return nil, err
	}
	if fi == nil {
		return nil, exception(exFileNotFound, "File does not exist: %s", src)
	}
	if ino == nil {
		return nil, exception(exFileNotFound, "Path is not a file: %s", src)
	}
	client := getString(req, "clientName")
	if ino.Client != "" {
		return nil, exception(exBeingCreated, "failed to append to %s for %s: lease held by %s", src, client, ino.Client)
	}
	if f := getUint(req, "flag"); f&^uint64(flagAppend) != 0 {
		return nil, errUnimplemented(fmt.Sprintf("append with flag %#x", f))
	}
	ino.Client = client
	if err := nn.writeInode(src, ino); err != nil {
		return nil, err
	}
	resp := fields{"stat": nn.status("", nn.local(src), fi, ino)}
	if n := len(ino.Blocks); n > 0 && ino.Blocks[n-1].Len < nn.blockSize {
		last := ino.Blocks[n-1]
		resp["block"] = nn.located(last, ino.length()-last.Len)
	}
	return resp, nil
}

// dropBlocks deletes block files after a delay: HDFS invalidates the
// replicas of deleted blocks asynchronously, so a reader that already has
// the locations can finish.
func (nn *namenode) dropBlocks(blocks []blockRef) {
	if len(blocks) == 0 {
		return
	}
	time.AfterFunc(nn.deleteDelay, func() {
		for _, b := range blocks {
			_ = os.Remove(nn.blockPath(b.ID))
		}
	})
}

func randomID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) >> 1
}
