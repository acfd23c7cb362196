package shellpolicy

import (
	"path"
	"strings"
)

// class is what kind of path a command deletes or writes, in increasing
// order of concern.
type class int

const (
	cNone     class = iota // a harmless special file (/dev/null)
	cNetwork               // bash's /dev/tcp/HOST/PORT and /dev/udp/HOST/PORT
	cTemp                  // under /tmp, /var/tmp, /dev/shm, or from mktemp
	cApp                   // anything else: an application directory
	cRelative              // relative to a working directory bastion does not know
	cDynamic               // not known before it runs
	cAccount               // a file directly in a home directory (~/.ssh, ~/.bashrc)
	cHome                  // a home directory, or /home itself
	cHistory               // a shell history file
	cLogs                  // system logs
	cDatabase              // a database data directory
	cSystem                // a system directory or file
	cDevice                // a block device
	cRoot                  // the root directory itself
)

type kind int

const (
	subtree kind = iota // the path and everything under it
	exact               // the path itself (its children may be application files)
)

type entry struct {
	comps []string // "*" matches any name, ".*" any dot-file
	kind  kind
	class class
}

func entries(class class, kind kind, paths ...string) []entry {
	var out []entry
	for _, p := range paths {
		out = append(out, entry{comps: strings.Split(p[1:], "/"), kind: kind, class: class})
	}
	return out
}

// protected lists the paths bastion protects, most specific first.
var protected = concat(
	entries(cLogs, subtree, "/var/log", "/var/adm", "/run/log", "/var/lib/journal"),
	entries(cDatabase, subtree, "/var/lib/postgresql", "/var/lib/pgsql", "/var/lib/mysql", "/var/lib/mariadb",
		"/var/lib/mongodb", "/var/lib/mongo", "/var/lib/redis", "/var/lib/cassandra", "/var/lib/elasticsearch",
		"/var/lib/clickhouse", "/var/lib/influxdb", "/var/lib/etcd", "/var/lib/couchdb", "/var/lib/neo4j",
		"/var/lib/docker/volumes", "/usr/local/var/postgres", "/usr/local/var/mysql", "/opt/homebrew/var/postgres",
		"/opt/homebrew/var/mysql", "/data/db", "/srv/postgresql", "/srv/mysql"),
	entries(cApp, subtree, "/home/*/.cache", "/Users/*/.cache", "/Users/*/Library/Caches"),
	entries(cAccount, subtree, "/home/*/.*", "/Users/*/.*"),
	entries(cHome, exact, "/home/*", "/Users/*", "/home", "/Users"),
	entries(cSystem, subtree, "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
		"/root", "/run", "/sbin", "/sys", "/usr", "/var/lib", "/var/cache", "/var/spool", "/var/backups",
		"/var/mail", "/var/run", "/var/lock", "/var/db", "/snap", "/nix", "/lost+found", "/System", "/Library",
		"/private/etc", "/private/var"),
	entries(cSystem, exact, "/var", "/opt", "/srv", "/mnt", "/media", "/tmp", "/var/tmp", "/var/www", "/data",
		"/private", "/Applications", "/Volumes", "/opt/homebrew", "/usr/local"),
)

func concat(lists ...[]entry) []entry {
	var out []entry
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var historyFiles = []string{".bash_history", ".zsh_history", ".history", ".sh_history", ".ash_history",
	".python_history", ".mysql_history", ".psql_history", ".node_repl_history", ".sqlite_history",
	".rediscli_history", ".lesshst", ".zhistory", "fish_history"}

var safeDevices = []string{"null", "zero", "full", "random", "urandom", "stdout", "stderr", "stdin", "tty", "fd", "pts", "shm"}

var blockDevices = []string{"sd*", "hd*", "vd*", "xvd*", "nvme*", "mmcblk*", "dm-*", "md*", "mapper", "disk",
	"loop*", "sr*", "nbd*", "rbd*", "zd*", "bcache*", "mem", "kmem", "port", "root", "cciss", "ram*"}

// target is a classified path.
type target struct {
	class class
	path  string // cleaned, for messages and target_prefix (patterns as written)
	match string // for target_prefix when it differs from path: unknown parts as markAny
}

// matchPath is the path as target_prefix matchers see it.
func (t target) matchPath() string {
	if t.match != "" {
		return t.match
	}
	return t.path
}

// classify judges the path a field names, for every working directory it
// may be relative to, and returns the most concerning.
func classify(f field, cwd []string) target {
	s := f.s
	if i := strings.IndexRune(s, markAny); i >= 0 {
		t := classifyDynamic(s[:i], f.disp, cwd)
		t.match = s
		if !strings.HasPrefix(s, "/") {
			if len(cwd) == 1 && !strings.ContainsRune(cwd[0], markAny) {
				t.match = cwd[0] + "/" + s
			} else {
				t.match = sAny + "/" + s
			}
		}
		return t
	}
	p := s
	isPat := f.glob || strings.ContainsRune(s, markTok)
	if isPat {
		p = f.pattern()
	}
	if strings.HasPrefix(p, "/") {
		return target{class: classifyAbs(path.Clean(p), isPat), path: shown(path.Clean(p), f, isPat), match: path.Clean(p)}
	}
	best := target{class: -1}
	for _, dir := range cwd {
		var t target
		if strings.ContainsRune(dir, markAny) {
			t = target{class: climb(p, isPat), path: f.disp, match: sAny + "/" + p}
		} else {
			abs := path.Clean(escapeGlob(dir) + "/" + p)
			if !isPat {
				abs = path.Clean(dir + "/" + p)
			}
			t = target{class: classifyAbs(abs, isPat || strings.ContainsRune(dir, markTok)), path: shown(abs, f, isPat), match: abs}
		}
		if t.class > best.class {
			best = t
		}
	}
	return best
}

// climb judges a relative path from a working directory bastion does not
// know. Going up to an ancestor of it (.., ../.., ../*) deletes the working
// directory and what is around it: for the usual working directories
// (/srv/app, /home/agent/repo) that is a system or home directory, and
// three levels up is the root itself. Further down, two levels up may be
// the root, so the path is judged from there too.
func climb(p string, isPat bool) class {
	p = path.Clean(p)
	k := 0
	for p == ".." || strings.HasPrefix(p, "../") {
		k++
		p = strings.TrimPrefix(strings.TrimPrefix(p, ".."), "/")
	}
	if k == 0 {
		return cRelative
	}
	ancestor := p == ""
	if isPat && !ancestor {
		ancestor = true
		for _, c := range strings.Split(p, "/") {
			ancestor = ancestor && (c == "*" || c == ".*")
		}
	}
	switch {
	case ancestor && k >= 3:
		return cRoot
	case ancestor:
		return cSystem
	case k >= 2:
		if c := classifyAbs("/"+p, isPat); c >= cAccount {
			return c
		}
	}
	return cRelative
}

func shown(p string, f field, isPat bool) string {
	if isPat && !f.glob {
		return strings.ReplaceAll(p, "*", "…")
	}
	return p
}

// classifyDynamic judges a path whose text after static is not known: only
// the visible part can be judged.
func classifyDynamic(static, disp string, cwd []string) target {
	if !strings.HasPrefix(static, "/") {
		if static != "" && len(cwd) == 1 && !strings.ContainsRune(cwd[0], markAny) {
			return classifyDynamic(path.Clean(cwd[0])+"/"+static, disp, nil)
		}
		if static == "" {
			return target{class: cDynamic, path: disp}
		}
		return target{class: cRelative, path: disp}
	}
	dir := static[:strings.LastIndexByte(static, '/')+1]
	if path.Clean(dir) == "/" {
		return target{class: cSystem, path: disp} // "/$X" may be any top-level directory
	}
	for _, e := range protected {
		if e.kind == subtree && e.class != cAccount && under(path.Clean(dir), e) {
			return target{class: e.class, path: disp}
		}
	}
	return target{class: cDynamic, path: disp}
}

// under reports whether the literal path p is e or inside it.
func under(p string, e entry) bool {
	comps := strings.Split(p[1:], "/")
	if len(comps) < len(e.comps) {
		return false
	}
	for i, ec := range e.comps {
		if !compMatch(comps[i], ec, false) {
			return false
		}
	}
	return true
}

// classifyAbs judges a cleaned absolute path or pattern.
func classifyAbs(p string, isPat bool) class {
	if p == "/" || (isPat && (p == "/*" || p == "/.*")) {
		return cRoot
	}
	comps := strings.Split(p[1:], "/")
	last := comps[len(comps)-1]
	for _, h := range historyFiles {
		if compMatch(last, h, isPat) && (!isPat || strings.Contains(last, "hist")) {
			return cHistory
		}
	}
	switch {
	case comps[0] == "dev" && len(comps) >= 2 && (comps[1] == "tcp" || comps[1] == "udp"):
		return cNetwork
	case comps[0] == "dev" && len(comps) >= 2:
		for _, d := range safeDevices {
			if comps[1] == d {
				if d == "shm" && len(comps) > 2 {
					return cTemp
				}
				if d != "shm" {
					return cNone
				}
			}
		}
		for _, d := range blockDevices {
			if ok, _ := path.Match(d, comps[1]); ok || (isPat && patMayMatch(comps[1], d)) {
				return cDevice
			}
		}
		return cSystem
	case comps[0] == "tmp" && len(comps) >= 2,
		comps[0] == "var" && len(comps) >= 3 && comps[1] == "tmp":
		return cTemp
	}
	// The most specific entry a path is in decides. A pattern may name
	// paths in several entries (/var/lib/* holds /var/lib/journal and
	// /var/lib/postgresql): it takes the most concerning of those it may
	// match, up to the first entry it is surely in.
	found := class(-1)
	for _, e := range protected {
		if len(comps) < len(e.comps) || (e.kind == exact && len(comps) != len(e.comps)) {
			continue
		}
		// an exception (cApp) holds only for paths surely inside it: the
		// pattern ~/.* also names ~/.ssh
		if !prefixMatch(comps, e.comps, isPat && e.class != cApp) {
			continue
		}
		found = max(found, e.class)
		if !isPat || surelyIn(comps, e.comps) {
			return found
		}
	}
	// an ancestor of a protected path deletes it too
	for _, e := range protected {
		if e.class != cApp && len(comps) < len(e.comps) && prefixMatch(comps, e.comps[:len(comps)], isPat) {
			if e.class == cAccount {
				return max(found, cHome)
			}
			return max(found, e.class, cSystem)
		}
	}
	if found >= 0 {
		return found
	}
	return cApp
}

// surelyIn reports whether every path the pattern comps matches is in the
// entry ecomps (not only some of them).
func surelyIn(comps, ecomps []string) bool {
	for i, ec := range ecomps {
		c := comps[i]
		if !(ec == "*" || ec == ".*" && strings.HasPrefix(c, ".") || c == ec) {
			return false
		}
	}
	return true
}

func prefixMatch(comps, ecomps []string, isPat bool) bool {
	for i, ec := range ecomps {
		if !compMatch(comps[i], ec, isPat) {
			return false
		}
	}
	return true
}

// compMatch matches a path component (a pattern when isPat) with a
// component of a protected entry ("*": any name, ".*": any dot-file).
func compMatch(c, ec string, isPat bool) bool {
	switch {
	case ec == "*":
		return true
	case ec == ".*":
		return strings.HasPrefix(c, ".") || (isPat && c != "" && strings.ContainsRune("*?[", rune(c[0])))
	case isPat:
		ok, _ := path.Match(c, ec)
		return ok
	}
	return c == ec
}

// patMayMatch reports whether pattern c may match a name that d (itself a
// pattern like "sd*") matches: true when their literal prefixes agree.
func patMayMatch(c, d string) bool {
	cp := c[:len(c)-len(strings.TrimLeft(c, "abcdefghijklmnopqrstuvwxyz0123456789-_."))]
	dp := strings.TrimRight(d, "*")
	return strings.HasPrefix(cp, dp) || strings.HasPrefix(dp, cp)
}

// deleteRule is the rule for deleting a path of class c.
func deleteRule(c class) string {
	switch c {
	case cRoot:
		return ruleRmRoot
	case cSystem, cDevice, cNone, cNetwork:
		return ruleRmSystem
	case cHome, cAccount:
		return ruleRmHome
	case cDatabase:
		return ruleRmDatabase
	case cLogs:
		return ruleWipeLogs
	case cHistory:
		return ruleWipeHistory
	case cTemp:
		return ruleRmTemp
	case cDynamic:
		return ruleRmDynamic
	}
	return ruleRmApp
}

// writeRule is the rule for writing to a path of class c, truncating it
// unless appending; "" when writing there is fine.
func writeRule(c class, appending bool) string {
	switch c {
	case cRoot, cSystem, cDatabase:
		if appending {
			return ruleModify
		}
		return ruleOverwrite
	case cLogs:
		if appending {
			return ruleModify
		}
		return ruleWipeLogs
	case cHistory:
		if appending {
			return ruleModify
		}
		return ruleWipeHistory
	case cDevice:
		return ruleBlockDevice
	case cAccount, cHome:
		return ruleModify
	case cNetwork:
		return ruleNetRedirect
	}
	return ""
}
