#!/usr/bin/perl
# Reads or changes the immutable flag of paths inside one folder without ever following a link below it.
#
#   xo-immutable-flags.pl  < requests
#
# Serves requests one after the other until its stdin closes (the daemon keeps it running; a command runs one for its
# own run). A request: "<set|clear|check|get> <count>" NUL, ROOT NUL, REALROOT NUL, then <count> records. ROOT is opened
# again for each request, as given (the admin's links above it are followed), and must be REALROOT, as resolved at
# start: nothing is held between requests, so a root renamed away or replaced is never acted on through a descriptor
# of the old one, and an unmount is never kept busy. Each record ends with a NUL: "<kind> <identity or -> <path
# relative to ROOT, or .>". Kinds:
#   F  a regular file                          (set, clear)
#   V  a VHD directory: header, footer, bat, chunk-filters.json, parentLocatorEntry0-7, blocks/<n>/<m>  (set, clear)
#   D  a config or pool metadata date folder: metadata.json, data, data.json, no folder  (set, clear)
#   v  a regular file, or a directory held to V, whichever the path opens  (clear: lift, whose entry may not say)
#   d  a regular file, or a directory held to D, whichever the path opens  (clear)
#   R  a folder and everything in it, whatever it holds: decommissioning only  (clear)
#   ?  whatever the path is, a regular file or a directory  (get)
#   J  a VM backup's json, xo-vm-backups/<vm>/<dt>.json, cleared as F only when no flat <dt>.vhd in a VDI folder of
#      its VM folder (vdis/<job>/<vdi>/, dot names and links skipped) is immutable: EHELD otherwise, naming it, or
#      when the folders cannot be looked through  (clear: lift, at the end of its pass)
# A check is a clear that changes nothing (lift --dry-run, verify): every refusal a clear would answer, and "ok" where
# it would clear.
# A clear of a directory unit is checked whole, on the descriptors held, before any flag changes: anything outside its
# layout (another folder or name, a link, a special file, a file with two links, another filesystem) refuses it
# (EFOREIGN, naming the entry), and nothing is touched. A set locks each folder before listing it; what it finds
# outside the layout (the same, or an entry already immutable in a folder that was not) does not stop it: the unit is
# locked all the same, everything in it but links, special files, other filesystems and files of another owner with a
# second name, and the answer is ok with EFOREIGN and what was found; a link where XO makes a VHD directory's blocks/
# or blocks/<n>, or writes its chunk-filters.json, is followed and what it leads to locked with the unit, or, when it
# may not be followed, the answer is failed, the rest locked all the same (follow_link). A file unit with a second
# name is locked and said likewise (ELINKS), unless someone else than its folder's owner owns it (refused).
# A file record that opens a directory, or a directory record that opens a file, is refused (EKIND). An identity,
# "<inode>" or "<inode>:<birth ns>": act only if the path is still that file (ECHANGED otherwise); a birth time of 0,
# given or found, says nothing (a filesystem that does not keep one). Lift sends the identity its entry recorded at
# lock time, and this check is the lift's: a link on the way or a root moved (ECONFINE), a link or special file
# (ENOTSUP), another file (ECHANGED) are refused and reported as security warnings; a folder on the way gone while
# clearing is a folder renamed with a locked unit inside (failed, not vanished); only the unit itself gone is vanished.
# Paths are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) where the kernel has it
# (5.6+), else one component at a time with O_NOFOLLOW from the folder already held (/proc/self/fd/N/NAME is
# openat(N, NAME)); the last one with O_PATH; the flag is read and changed through that descriptor, so nothing is
# resolved twice. XO_IMMUTABLE_FLAGS_WALK=1 forces the component walk (tests run both); XO_IMMUTABLE_FLAGS_NO_OPENAT2=1
# makes openat2 fail as on a kernel without it (tests: the first open of a helper's life falls back to the walk).
# The answer to a request: one line per record, in order: "<n>\t<ok|vanished|failed|on|off>\t<code>\t<message>
# [\t<identity>]" (code "-" but for a set locked all the same, above), then "end\t<n>"; identity, after a set (and for
# a get), of what was acted on: "<dev> <ino> <size> <mtime ns> <ctime ns> <birth ns>". A refused root:
# "anchor\t<code>\t<message>", then "end\t0". A request that cannot be read (cut short, or not one) ends the helper:
# what was not answered was not acted on. "busy" lines say a long unit is still being worked on, and "warn\t<message>"
# lines carry perl's warnings. Lines go out at the end of a request and at least once a second, so that the adapter
# can tell a slow helper from a stuck one.
# Names in messages are escaped (\xHH) and messages cut, so the output is bounded whatever the names.
# No `use warnings` and no Errno or POSIX: each costs more start-up time than chattr's whole run, and each command
# starts the helper. The tests turn perl's warnings on (XO_IMMUTABLE_FLAGS_WARNINGS=1, as perl -w does), and stop the
# helper in the middle of a request (XO_IMMUTABLE_FLAGS_STOP=1: it stops itself after its first answer, for a test to
# kill it there; XO_IMMUTABLE_FLAGS_STOP_INSIDE=1: after the first file it changed inside a directory unit).
# Warnings go out with the answer of the request that raised them (a separate stream would arrive in its own time).
BEGIN {
  $^W = 1 if ($ENV{XO_IMMUTABLE_FLAGS_WARNINGS} // '') eq '1';
  $SIG{__WARN__} = sub { my ($text) = @_; $text =~ s/([\x00-\x1f\x7f\\])/sprintf('\\x%02x', ord $1)/ge; print "warn\t$text\n" };
}
use strict;
use Fcntl qw(O_RDONLY O_NONBLOCK O_NOFOLLOW O_NOCTTY O_DIRECTORY S_ISREG S_ISDIR S_ISLNK);

# Linux numbers that perl does not export, by machine: the helper refuses to run anywhere else.
my %MACHINE = (
  x86_64 => { statx => 332, openat2 => 437, openat => 257, ioctl => 16, close => 3 },
  aarch64 => { statx => 291, openat2 => 437, openat => 56, ioctl => 29, close => 57 },
);
# The same on both (asm-generic).
my $O_PATH = 0x200000;
my $O_CLOEXEC = 0x80000;
my $AT_FDCWD = -100;
my $FS_IOC_GETFLAGS = 0x80086601;
my $FS_IOC_SETFLAGS = 0x40086602;
my $FS_IMMUTABLE_FL = 0x10;
my $STATX_ATTR_IMMUTABLE = 0x10;
my $AT_SYMLINK_NOFOLLOW = 0x100;
my $AT_EMPTY_PATH = 0x1000;
my $STATX_WANTED = 0xfff;    # STATX_BASIC_STATS | STATX_BTIME
my $RESOLVE_CONFINED = 0x02 | 0x04 | 0x08;    # NO_MAGICLINKS | NO_SYMLINKS | BENEATH
my $MAX_MESSAGE = 600;

# The errno numbers of x86_64 and arm64 (asm-generic) that a walk or an ioctl can meet.
my %ERRNO_NAME = (
  1 => 'EPERM', 2 => 'ENOENT', 4 => 'EINTR', 5 => 'EIO', 6 => 'ENXIO', 9 => 'EBADF', 11 => 'EAGAIN', 12 => 'ENOMEM',
  13 => 'EACCES', 16 => 'EBUSY', 18 => 'EXDEV', 19 => 'ENODEV', 20 => 'ENOTDIR', 21 => 'EISDIR', 22 => 'EINVAL',
  23 => 'ENFILE', 24 => 'EMFILE', 25 => 'ENOTTY', 28 => 'ENOSPC', 30 => 'EROFS', 36 => 'ENAMETOOLONG',
  38 => 'ENOSYS', 40 => 'ELOOP', 95 => 'EOPNOTSUPP', 116 => 'ESTALE',
);

die "usage: xo-immutable-flags.pl < requests (no arguments)\n" if @ARGV;
binmode STDOUT;
binmode STDIN;

sub escape {
  my ($text) = @_;
  $text =~ s/([\x00-\x1f\x7f\\])/sprintf('\\x%02x', ord $1)/ge;
  return $text;
}

# Refuses the whole run before anything is opened: every record of the first request fails with this.
sub refuse_run {
  my ($code, $message) = @_;
  print "anchor\t$code\t", escape($message), "\n";
  exit 3;
}

# The request being served: what it does, and the folder it is confined to (opened for it, closed after it).
my ($op, $root, $real_root, $anchor);
# A check (lift --dry-run) is answered as a clear, with nothing changed.
my $dry = 0;

# Sends what was answered so far at least once a second (setting $| flushes), with a "busy" line when nothing was
# answered since: a stuck helper (a disk that stopped answering) shows as silence, a slow one does not.
my $sent_at = 0;
sub keep_alive {
  my ($answered) = @_;
  return if time == $sent_at;
  print "busy\n" unless $answered;
  $| = 1;
  $| = 0;
  $sent_at = time;
}

# The numbers above are those of x86_64 and aarch64 Linux: checked against the machine perl itself was built for (its
# ELF header: cheaper than loading Config or POSIX), and the errno numbers against the C library's own messages (the
# adapter runs us with LC_ALL=C).
my %ELF_MACHINE = (62 => 'x86_64', 183 => 'aarch64');
my ($arch, $elf) = ('', '');
# The tests point this at another header (set by the code that loads us: nothing from the environment).
our $MACHINE_FILE;
$MACHINE_FILE //= '/proc/self/exe';
if (open(my $exe, '<', $MACHINE_FILE)) { binmode $exe; read($exe, $elf, 20); close $exe }
my ($class, $endian, $e_machine) = length $elf == 20 ? unpack('x4 C C x12 v', $elf) : (0, 0, 0);
$arch = $ELF_MACHINE{$e_machine} // '' if $class == 2 && $endian == 1;
my $machine = $MACHINE{$arch};
refuse_run('EMACHINE', 'the flag helper knows the ioctl and system call numbers of x86_64 and aarch64 Linux only, not '
    . ($arch || "ELF machine $e_machine"))
  unless $machine;
for my $errno (2, 20, 40) {
  local $! = $errno;
  my %expected = (2 => 'No such file or directory', 20 => 'Not a directory', 40 => 'Too many levels of symbolic links');
  refuse_run('EMACHINE', "errno $errno is \"$!\" here, not $ERRNO_NAME{$errno}: the flag helper does not fit this machine")
    unless "$!" eq $expected{$errno};
}
my $use_openat2 = !($ENV{XO_IMMUTABLE_FLAGS_WALK} // '');
# Tests: openat2 answers ENOSYS, as on a kernel before 5.6.
my $openat2_missing = ($ENV{XO_IMMUTABLE_FLAGS_NO_OPENAT2} // '') eq '1';

sub errno_code {
  my ($errno) = @_;
  my $name = $ERRNO_NAME{ $errno + 0 } // 'EUNKNOWN';
  return 'ENOTSUP' if $name eq 'ENOTTY' || $name eq 'EOPNOTSUPP';
  return $name;
}

my $stop_after_first = ($ENV{XO_IMMUTABLE_FLAGS_STOP} // '') eq '1';
my $stop_inside = ($ENV{XO_IMMUTABLE_FLAGS_STOP_INSIDE} // '') eq '1';

sub emit {
  my ($n, $status, $code, $message, $identity) = @_;
  $message = substr($message, 0, $MAX_MESSAGE) . '...' if length $message > $MAX_MESSAGE;
  print "$n\t$status\t$code\t$message", (defined $identity ? "\t$identity" : ''), "\n";
  keep_alive(1);
  if ($stop_after_first && $n == 0) { $| = 1; $| = 0; kill 'STOP', $$ }
}

# A descriptor the kernel returned, held without a perl file handle: opening one through perl costs four more system
# calls (fcntl, lseek, fstat, an ioctl), twice per path. Closed when the last reference to it goes, as a handle is.
package XoFd {
  sub DESTROY { syscall($machine->{close}, $_[0]{fd} + 0) if $machine }
}

# The descriptor number of a held folder or file: one of ours, or a perl handle (the anchor, the component walk).
sub fd_of { return ref $_[0] eq 'XoFd' ? $_[0]{fd} : fileno($_[0]) }

sub fd_path { return '/proc/self/fd/' . fd_of($_[0]) }

# A failure of one path: a code and a message naming what failed.
sub failure { return { code => $_[0], message => escape($_[1]) } }

# statx of `name` inside the held folder (never following a link), or of the handle itself when name is ''.
# Returns a hash, or undef with $! set.
sub stat_at {
  my ($handle, $name) = @_;
  my $buffer = "\0" x 256;
  my $path = "$name";    # a fresh string: syscall passes a number-looking scalar as an int
  my $flags = $path eq '' ? $AT_EMPTY_PATH | $AT_SYMLINK_NOFOLLOW : $AT_SYMLINK_NOFOLLOW;
  return undef if syscall($machine->{statx}, fd_of($handle) + 0, $path, $flags, $STATX_WANTED, $buffer) == -1;
  my (
    undef, undef, $attributes, $nlink, $uid, undef, $mode, $ino, $size, undef, $attributes_mask,
    undef, undef, $btime, $btime_ns, $ctime, $ctime_ns, $mtime, $mtime_ns, undef, undef, $major, $minor,
  ) = unpack('L L Q L L L S x2 Q Q Q Q q L x4 q L x4 q L x4 q L x4 L L L L', $buffer);
  # dev as glibc's makedev() gives it, which is what Node's stat reports: identities recorded either way compare equal.
  my $dev = (($major & 0xfffff000) << 32) | (($major & 0xfff) << 8) | (($minor & 0xffffff00) << 12) | ($minor & 0xff);
  return {
    mode => $mode, nlink => $nlink, ino => $ino, dev => $dev, uid => $uid,
    # undef when the filesystem does not say (the flag is then read by ioctl).
    immutable => ($attributes_mask & $STATX_ATTR_IMMUTABLE) ? (($attributes & $STATX_ATTR_IMMUTABLE) ? 1 : 0) : undef,
    # What identity_of answers with: only the unit's own statx is answered, not each entry of a directory's.
    times => [$size, $mtime, $mtime_ns, $ctime, $ctime_ns, $btime, $btime_ns],
  };
}

# "<dev> <ino> <size> <mtime ns> <ctime ns> <birth ns>" of a statx result.
sub identity_of {
  my ($st) = @_;
  my ($size, $mtime, $mtime_ns, $ctime, $ctime_ns) = @{ $st->{times} };
  return join(' ', $st->{dev}, $st->{ino}, $size, $mtime * 1_000_000_000 + $mtime_ns, $ctime * 1_000_000_000 + $ctime_ns,
    birth_of($st));
}

# The birth time in ns, as Node's birthtimeNs says it (0: not kept).
sub birth_of {
  my ($btime, $btime_ns) = @{ $_[0]{times} }[5, 6];
  return $btime * 1_000_000_000 + $btime_ns;
}

# Wraps a descriptor number the kernel returned.
sub adopt {
  my ($fd) = @_;
  return bless { fd => $fd }, 'XoFd';
}

# Opens `name` (one component, or a relative path with openat2) inside the held folder, never following a link;
# undef with $! set on failure.
sub open_at {
  my ($dir, $name, $flags) = @_;
  if ($use_openat2) {
    my $path = "$name";
    my $how = pack('QQQ', $flags | $O_CLOEXEC, 0, $RESOLVE_CONFINED);
    my $fd = $openat2_missing ? do { $! = 38; -1 } : syscall($machine->{openat2}, fd_of($dir) + 0, $path, $how, 24);
    return adopt($fd) if $fd >= 0;
    # Older kernel (or seccomp said no): the walk from now on. A path of several components is the walk's: the sysopen
    # below would follow a link on its way (undef, $! still saying why, and the caller walks).
    if ($! == 38 || $! == 1) { $use_openat2 = 0; return undef if index($name, '/') >= 0 }
    else { return undef }
  }
  my $handle;
  return $handle if sysopen($handle, fd_path($dir) . "/$name", $flags);
  return undef;
}

# The anchor of a request: opened following the admin's links, then it must be where the remote was found at start.
# Returns a failure when it is not.
sub open_anchor {
  undef $anchor;
  my $handle;
  return failure(errno_code($!), "cannot open $root: $!") unless sysopen($handle, $root, $O_PATH | O_DIRECTORY);
  my $resolved = readlink(fd_path($handle)) // '';
  return failure('ECONFINE', "$root resolves to $resolved, not $real_root as at start") if $resolved ne $real_root;
  $anchor = $handle;
  return undef;
}

# Opens `rel` below the anchor, one component at a time, never following a link. Returns an O_PATH handle, or a
# failure (vanished when the path itself is gone).
sub walk {
  my ($rel) = @_;
  return $anchor if $rel eq '.';
  my @parts = split m{/}, $rel, -1;
  my $dir = $anchor;
  my $walked = $root;
  for my $i (0 .. $#parts) {
    my $part = $parts[$i];
    my $last = $i == $#parts;
    my $flags = $O_PATH | O_NOFOLLOW | ($last ? 0 : O_DIRECTORY);
    my $next;
    if (!sysopen($next, fd_path($dir) . "/$part", $flags)) {
      my $code = errno_code($!);
      my $reason = "$!";
      $walked .= "/$part";
      # Gone is vanished, except a folder on the way while unlocking: lift checked it a moment ago, so it was renamed
      # with a locked unit inside, which must stay on record (reported, not forgotten).
      return { %{ failure($code, "$walked: $reason") }, vanished => ($last || $op ne 'clear') } if $code eq 'ENOENT';
      if ($code eq 'ENOTDIR' || $code eq 'ELOOP') {
        # Clearing, a file where a folder was is that folder renamed away, as gone is: failed, not vanished.
        my $st = $op eq 'clear' ? stat_at($dir, $part) : undef;
        return failure('ENOTDIR', "$walked is not a folder any more (renamed?): not touched")
          if $st && !S_ISLNK($st->{mode}) && !S_ISDIR($st->{mode});
        return failure('ECONFINE', "$walked is not a real folder (a symbolic link?): not followed");
      }
      return failure($code, "$walked: $reason");
    }
    $walked .= "/$part";
    $dir = $next;
  }
  return $dir;
}

# The path's handle: through openat2 in one call where the kernel confines it; any refusal is walked again, which says
# which component failed and why (and acts as safely).
sub open_unit {
  my ($rel) = @_;
  return $anchor if $rel eq '.';
  if ($use_openat2) {
    my $handle = open_at($anchor, $rel, $O_PATH | O_NOFOLLOW);
    return $handle if defined $handle;
  }
  return walk($rel);
}

# What the flag can be changed on: a regular file or a directory; cleared, a file with no other name (a set locks a file
# with more, and says so: see `extra_links`).
sub refusal {
  my ($st, $name) = @_;
  my $mode = $st->{mode};
  return failure('ENOTSUP', "$name is a symbolic link: not followed") if S_ISLNK($mode);
  return failure('ENOTSUP', "$name is not a regular file or directory") unless S_ISREG($mode) || S_ISDIR($mode);
  return failure('ELINKS', "$name has $st->{nlink} hard links (one may be outside the remote): not touched")
    if S_ISREG($mode) && $st->{nlink} > 1 && $op eq 'clear';
  return undef;
}

# When locking, what XO never writes (a second name of a file, or, in a directory unit, anything outside its layout)
# does not leave XO's data unlocked: the unit is locked whole all the same and the answer says what was found; lift
# refuses to clear it while that is there, so nothing is unlocked with it. A file with a second name is locked only
# when owned by whoever owns the unit's folder (XO's user, who can change it anyway): over NFS the server does not
# apply fs.protected_hardlinks to a client's link (nfsd calls vfs_link directly), so another owner's file, perhaps
# from outside the remote, could have been linked in.
my $LOCKED_ANYWAY = 'locked all the same (when in doubt, protect); lift never unlocks it while that is there';
my (%foreign, $unit_uid);

sub other_owner {
  my ($st) = @_;
  return S_ISREG($st->{mode}) && $st->{nlink} > 1 && defined $unit_uid && $st->{uid} != $unit_uid;
}

# A file unit with a second name, when locking: (warning) to lock it all the same, or (undef, refusal) when it has
# another owner than its folder.
sub extra_links {
  my ($st, $name, $rel) = @_;
  return () unless $op eq 'set' && S_ISREG($st->{mode}) && $st->{nlink} > 1;
  my ($parent) = $rel =~ m{\A(.*)/[^/]+\z};
  my $folder = open_unit($parent // '.');
  my $folder_st = ref $folder eq 'HASH' ? undef : stat_at($folder, '');
  $unit_uid = $folder_st ? $folder_st->{uid} : undef;
  return (undef, failure('ELINKS', "$name has $st->{nlink} hard links and its folder cannot be read: not touched"))
    unless defined $unit_uid;
  return (undef, failure('ELINKS', "$name has $st->{nlink} hard links and belongs to uid $st->{uid}, not to the owner "
      . "of its folder (one may be outside the remote): not touched")) if other_owner($st);
  return failure('ELINKS', "$name has $st->{nlink} hard links (one may be outside the remote): $LOCKED_ANYWAY");
}

# Something outside a directory unit's layout: refused when clearing, locked all the same when locking.
sub foreign_entry {
  my ($what) = @_;
  return failure('EFOREIGN', $op eq 'set' ? "$what: $LOCKED_ANYWAY" : "$what: refused, nothing changed");
}

# Reads the flags through a descriptor opened on the very file the O_PATH handle holds.
sub flags_of {
  my ($handle, $name) = @_;
  my $proc = fd_path($handle);
  my $fd = syscall($machine->{openat}, $AT_FDCWD, $proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | $O_CLOEXEC, 0);
  return (undef, failure(errno_code($!), "$name: $!")) if $fd < 0;
  my $file = adopt($fd);
  my $buffer = pack('i', 0) . "\0" x 4;
  syscall($machine->{ioctl}, $fd + 0, $FS_IOC_GETFLAGS, $buffer) != -1
    or return (undef, failure(errno_code($!), "$!: while reading flags on $name"));
  return ($file, unpack('i', $buffer));
}

# Sets or clears the flag as `wanted_on` says; returns a failure, or undef (and whether it changed, in $changed).
sub change {
  my ($handle, $name, $wanted_on, $changed) = @_;
  my ($file, $flags) = flags_of($handle, $name);
  return $flags unless defined $file;
  my $wanted = $wanted_on ? ($flags | $FS_IMMUTABLE_FL) : ($flags & ~$FS_IMMUTABLE_FL);
  return undef if $wanted == $flags;
  my $buffer = pack('i', $wanted) . "\0" x 4;
  syscall($machine->{ioctl}, $file->{fd} + 0, $FS_IOC_SETFLAGS, $buffer) != -1
    or return failure(errno_code($!), "$!: while setting flags on $name");
  $$changed = 1 if $changed;
  return undef;
}

sub is_immutable {
  my ($handle, $st, $name) = @_;
  return $st->{immutable} if defined $st->{immutable};
  my ($file, $flags) = flags_of($handle, $name);
  return undef unless defined $file;
  return ($flags & $FS_IMMUTABLE_FL) ? 1 : 0;
}

# Keeps the first problem of a path and counts the rest: a flood inside one directory costs one line.
sub note {
  my ($problems, $failure) = @_;
  $problems->{first} //= $failure;
  $problems->{count}++;
}

# What XO writes in a directory unit, by depth: 'file', 'dir', or undef for anything else (vhd-lib VhdDirectory.js;
# backups _XoMetadataBackup.mjs and _PoolMetadataBackup.mjs). R (decommissioning) takes anything.
my %VHD_TOP = map { ($_ => 'file') } qw(header footer bat chunk-filters.json), map {"parentLocatorEntry$_"} 0 .. 7;
$VHD_TOP{blocks} = 'dir';
my %DATE_FOLDER = map { ($_ => 'file') } qw(metadata.json data data.json);

sub expected {
  my ($layout, $depth, $entry) = @_;
  if ($layout eq 'V') {
    return $VHD_TOP{$entry} if $depth == 0;
    return $entry =~ /\A(?:0|[1-9][0-9]{0,9})\z/ ? 'dir' : undef if $depth == 1;
    return $entry =~ /\A(?:0|[1-9][0-9]{0,2})\z/ ? 'file' : undef if $depth == 2;
    return undef;
  }
  return $depth == 0 ? $DATE_FOLDER{$entry} : undef if $layout eq 'D';
  return 'any';
}

my $MAX_DEPTH = 64;

# A (internal): what a set found outside V or D, locked whole as R would clear it, without crossing a filesystem.
my %LAYOUT_NAME = (V => 'VHD directory', D => 'config or pool metadata folder', R => 'folder', A => 'folder');

# The entries of a held directory, each with its statx; a failure when it cannot be listed or an entry is outside the
# layout. `mutable_before`: the directory was not immutable before this run, so an immutable entry was moved in.
sub entries_of {
  my ($dir, $name, $layout, $depth, $unit_dev, $mutable_before) = @_;
  my $listing;
  opendir($listing, fd_path($dir)) or return failure(errno_code($!), "$name: $!");
  my @names = grep { $_ ne '.' && $_ ne '..' } readdir($listing);
  closedir($listing);
  my (@entries, @skipped);
  for my $entry (@names) {
    keep_alive(0);
    my $child = "$name/$entry";
    my $st = stat_at($dir, $entry);
    if (!$st) {
      next if $! == 2 && ($layout eq 'R' || $layout eq 'A');
      return failure(errno_code($!), "$child: $!");
    }
    my $kind = expected($layout, $depth, $entry);
    my $what = "$child is not part of a $LAYOUT_NAME{$layout}";
    if ($layout eq 'R' || $layout eq 'A') {
      # Decommissioning clears what it can reach, a set locks it: links and special files are reported, never
      # followed, and a set does not leave the unit's filesystem.
      my $refused = refusal($st, $child);
      $refused //= failure('EFOREIGN', "$child is on another filesystem: not entered")
        if $layout eq 'A' && $st->{dev} != $unit_dev;
      $refused //= failure('EFOREIGN', "$child has $st->{nlink} hard links and belongs to uid $st->{uid}, not to the "
          . "owner of the unit (one may be outside the remote): not locked") if $layout eq 'A' && other_owner($st);
      if ($refused && $refused->{code} ne 'ELINKS') { push @skipped, { %$refused, entry => $entry, st => $st }; next }
    } else {
      return foreign_entry("$what (a symbolic link)") if S_ISLNK($st->{mode});
      return foreign_entry($what) unless defined $kind;
      return foreign_entry("$what (a special file)") unless S_ISREG($st->{mode}) || S_ISDIR($st->{mode});
      return foreign_entry("$what (a " . (S_ISDIR($st->{mode}) ? 'folder' : 'file') . ' where XO writes a '
          . ($kind eq 'dir' ? 'folder' : 'file') . ')')
        if ($kind eq 'dir') != (S_ISDIR($st->{mode}) ? 1 : 0);
      return foreign_entry("$what (it has $st->{nlink} hard links)") if S_ISREG($st->{mode}) && $st->{nlink} > 1;
      return foreign_entry("$what (another filesystem)") if $st->{dev} != $unit_dev;
      if ($mutable_before && $op eq 'set') {
        my $immutable = $st->{immutable};
        if (!defined $immutable) {
          my $handle = open_at($dir, $entry, $O_PATH | O_NOFOLLOW);
          $immutable = $handle ? is_immutable($handle, $st, $child) : undef;
        }
        return foreign_entry("$child is immutable while its folder is not (moved in?)") if $immutable;
      }
    }
    push @entries, { name => $entry, st => $st };
  }
  return (\@entries, \@skipped);
}

# Opens an entry listed a moment ago and checks it is still the inode listed: a swap since is a race, refused.
# `stable`: the folder is immutable, so nothing in it can be renamed, removed or added: the name opens what was listed.
sub open_listed {
  my ($dir, $entry, $name, $stable) = @_;
  my $directory = S_ISDIR($entry->{st}{mode});
  my $handle = open_at($dir, $entry->{name}, $O_PATH | O_NOFOLLOW | ($directory ? O_DIRECTORY : 0));
  return failure('ERACE', "$name/$entry->{name} changed while it was checked: " . ($! || 'swapped')) unless $handle;
  return $handle if $stable;
  my $now = stat_at($handle, '');
  return failure('ERACE', "$name/$entry->{name} changed while it was checked (swapped?): not touched")
    unless $now && $now->{ino} == $entry->{st}{ino} && $now->{dev} == $entry->{st}{dev};
  return $handle;
}

# Listings of the unit being cleared, by folder name, taken while the folder was immutable: they hold until it is
# cleared, which comes after its entries, so change_tree acts on them instead of listing and checking each entry again.
my %listed;

# Checks a directory unit whole, changing nothing: undef, or the first failure. `stable` (clear): the folder is
# immutable, its listing is kept for change_tree.
sub check_tree {
  my ($dir, $name, $layout, $depth, $unit_dev, $mutable_before, $stable) = @_;
  my ($entries) = entries_of($dir, $name, $layout, $depth, $unit_dev, $mutable_before);
  return $entries if ref $entries eq 'HASH';
  $listed{$name} = $entries if $stable;
  for my $entry (grep { S_ISDIR($_->{st}{mode}) } @$entries) {
    my $handle = open_listed($dir, $entry, $name, $stable);
    return $handle if ref $handle eq 'HASH';
    my $immutable = $mutable_before ? 0 : is_immutable($handle, $entry->{st}, "$name/$entry->{name}");
    my $failed = check_tree($handle, "$name/$entry->{name}", $layout, $depth + 1, $unit_dev, !$immutable,
      $op eq 'clear' && $immutable);
    return $failed if $failed;
  }
  return undef;
}

# Once locked, a unit cannot be renamed: if its path still opens it, the identity returned is the one at that path.
# If it was moved away just before (a swap), it is unlocked again (when this run locked it) and refused as a race.
sub still_there {
  my ($handle, $rel, $name, $locked_here) = @_;
  return undef unless defined $rel;
  my $held = stat_at($handle, '');
  my $again = open_unit($rel);
  my $now = ref $again eq 'HASH' ? undef : stat_at($again, '');
  return undef if $held && $now && $held->{ino} == $now->{ino} && $held->{dev} == $now->{dev};
  change($handle, $name, 0) if $locked_here;
  return failure('ERACE', "$name was moved or swapped while it was locked: not locked, tried again");
}

# Locks a checked directory unit: each folder before its entries (none can be swapped once it is immutable), its
# listing checked again once it is, so what came in between the check and the lock is refused too (and the folder
# unlocked again if this run locked it). Unlocks entries before their folder, each checked before it is acted on.
sub change_tree {
  my ($dir, $name, $layout, $depth, $unit_dev, $problems, $rel) = @_;
  my $dir_st = stat_at($dir, '');
  my $mutable_before = $dir_st ? !is_immutable($dir, $dir_st, $name) : 1;
  my $locked_here = 0;
  if ($op eq 'set') {
    my $failed = change($dir, $name, 1, \$locked_here) // still_there($dir, $rel, $name, $locked_here);
    if ($failed) { note($problems, $failed); return }
    # What XO never writes, nested deeper than any of its layouts: locked down to here, not entered (nor recursed into).
    if ($depth > $MAX_DEPTH) {
      note(\%foreign, failure('EFOREIGN', "$name is more than $MAX_DEPTH folders deep in the unit: not entered"));
      return;
    }
  }
  my $before = $problems->{count};
  # Clearing a folder still immutable: what check_tree listed in it is what it holds.
  my $stable = $op eq 'clear' && !$mutable_before && $listed{$name};
  my ($entries, $skipped) = $stable ? ($stable, []) : entries_of($dir, $name, $layout, $depth, $unit_dev, $mutable_before);
  # Something outside the layout (a set): locked with the rest, and said (after a link followed, which says more).
  my $found;
  if (ref $entries eq 'HASH' && $op eq 'set' && $entries->{code} eq 'EFOREIGN') {
    $found = $entries;
    $layout = 'A';
    ($entries, $skipped) = entries_of($dir, $name, $layout, $depth, $unit_dev, $mutable_before);
  }
  if (ref $entries eq 'HASH') {
    note($problems, $entries);
    change($dir, $name, 0) if $locked_here;
    return;
  }
  for my $skip (@$skipped) {
    my $into = $layout eq 'A' ? \%foreign : $problems;
    next if follow_link($dir, $name, $depth, $unit_dev, $skip, $problems, $into);
    note(\%foreign, $found) if $found;
    undef $found;
    note($into, $skip);
  }
  note(\%foreign, $found) if $found;
  for my $entry (@$entries) {
    keep_alive(0);
    my $child_name = "$name/$entry->{name}";
    my $handle = open_listed($dir, $entry, $name, $stable);
    if (ref $handle eq 'HASH') { note($problems, $handle); next }
    if (S_ISDIR($entry->{st}{mode})) { change_tree($handle, $child_name, $layout, $depth + 1, $unit_dev, $problems) }
    elsif (S_ISREG($entry->{st}{mode}) && ($entry->{st}{nlink} == 1 || $layout ne 'R')) {
      my $failed = change($handle, $child_name, $op eq 'set');
      note($problems, $failed) if $failed;
      kill 'STOP', $$ if $stop_inside && !$failed;
    } else {
      note($problems, failure('ELINKS', "$child_name has $entry->{st}{nlink} hard links: not touched"));
    }
  }
  # A folder with a problem below stays locked, clearing it would free what it holds; decommissioning (R) clears it.
  if ($op eq 'clear' && ($problems->{count} == $before || $layout eq 'R')) {
    my $failed = change($dir, $name, 0);
    note($problems, $failed) if $failed;
  }
}

# XO makes a VHD directory's blocks/ and blocks/<n> with `mkdir -p`, which follows a link there, and writes the disk's
# blocks behind it; it writes chunk-filters.json with `w`, which follows one too (every other file with `wx`). The
# reconcile puts such a folder back before the lock (protect/linked-folder.ts); a link planted again in between (the
# settle shows itself) is met here, in a folder this run has just locked, so the link can no longer be moved or
# removed. What it leads to is locked with the unit (layout A), so that the blocks behind it are as undeletable as the
# rest of the disk and XO still reads them through the link: resolved as a client resolves it (link_target), a folder
# of the link's owner on the unit's filesystem, never the root, a folder holding the link or the unit, one of XO's own
# folders above a unit (locking those would stop XO's next backups), nor another backup (its lift would free it); for
# chunk-filters.json, a file of the link's owner with no other name, never one at the root nor XO's cache.json.gz.
# What it leads to is locked first, then checked again where it is: once locked it cannot be moved, and one swapped in
# between (one of XO's own) is unlocked again. A link that cannot be followed (it leads nowhere yet, or where it may
# not be followed) fails the unit, what it holds locked all the same: it is tried again, never recorded as locked.
my $MAX_FOLLOWED = 2048;
my $RESOLVE_BENEATH = 0x02 | 0x08;    # NO_MAGICLINKS | BENEATH
my ($unit_layout, $unit_handle, $followed) = ("", undef, 0);
# Per record: the folders XO's blocks go in (blocks/, and what a link there leads to); what a follow locked (dev:ino),
# each walked once whatever number of links lead to it.
my (%blocks_folders, %walked);

# Returns whether the link was said (into `into`, or as a problem): 0 for a skipped entry that is not such a link.
sub follow_link {
  my ($dir, $name, $depth, $unit_dev, $skip, $problems, $into) = @_;
  my ($entry, $st) = @$skip{qw(entry st)};
  return 0 unless $op eq 'set' && $unit_layout eq 'V' && defined $entry && S_ISLNK($st->{mode});
  my $folder = $depth == 0 ? $entry eq 'blocks'
    : $depth == 1 && $blocks_folders{$name} && $entry =~ /\A(?:0|[1-9][0-9]{0,9})\z/;
  return 0 unless $folder || ($depth == 0 && $entry eq 'chunk-filters.json');
  my $child = "$name/$entry";
  my $where = 'where XO ' . ($folder ? 'makes a folder' : 'writes a file');
  my $not = sub {
    note($problems, failure('EFOREIGN', "$child is a symbolic link $where, not followed: $_[0]; the rest is locked, "
        . 'not what XO reads through the link: tried again'));
    return 1;
  };
  return $not->("over $MAX_FOLLOWED such links in the unit") if ++$followed > $MAX_FOLLOWED;
  my ($to, $handle, $from) = link_target($dir, $entry, $folder);
  return $not->($to) unless $handle;
  my $why = target_refusal($to, $from, $folder);
  my $target = defined $why ? undef : stat_at($handle, '');
  $why //= !$target ? "$to cannot be read ($!)"
    : $folder && !S_ISDIR($target->{mode}) ? "$to is not a folder"
    : !$folder && !S_ISREG($target->{mode}) ? "$to is not a regular file"
    : !$folder && $target->{nlink} != 1 ? "$to has $target->{nlink} hard links"
    : $target->{dev} != $unit_dev ? "$to is on another filesystem"
    : $target->{uid} != $st->{uid} ? "$to belongs to uid $target->{uid}, not to the link's owner ($st->{uid})" : undef;
  return $not->($why) if defined $why;
  my $said = "$child is a symbolic link $where: $to, which it leads to, is locked with the unit (XO reads the disk "
    . "through it); $LOCKED_ANYWAY";
  if ($walked{"$target->{dev}:$target->{ino}"}++) { note($into, failure('EFOREIGN', $said)); return 1 }
  my $locked_here = 0;
  my $failed = change($handle, "$root/$to", 1, \$locked_here);
  return $not->("$to could not be locked: $failed->{message}") if $failed;
  my $now = rel_of($handle);
  my $moved = !defined $now ? 'out of the remote' : $now ne $to ? "to $now" : target_refusal($now, $from, $folder);
  if (defined $moved) {
    change($handle, "$root/$to", 0) if $locked_here;
    return $not->("$to was swapped or moved ($moved) while it was locked, and unlocked again");
  }
  # Said before what is found inside it.
  note($into, failure('EFOREIGN', $said));
  if ($folder) {
    $blocks_folders{"$root/$to"} = 1 if $depth == 0;
    change_tree($handle, "$root/$to", 'A', $depth + 1, $unit_dev, $problems);
  }
  # The link cannot change any more; a folder on the way to what it leads to could have, before that was locked.
  my (undef, $again) = link_target($dir, $entry, $folder);
  my $again_st = $again ? stat_at($again, '') : undef;
  note($problems, failure('ERACE', "$child led to $to, which a folder renamed on the way took elsewhere: tried again"))
    unless $again_st && $again_st->{ino} == $target->{ino} && $again_st->{dev} == $target->{dev};
  return 1;
}

# Why the target of a link at `from` (both relative to the root) may not be followed: a reason, or undef.
sub target_refusal {
  my ($to, $from, $folder) = @_;
  # Where the unit is now (a folder above it may have been renamed since it was opened).
  my $unit = rel_of($unit_handle) // '';
  return 'it leads to the root' if $to eq '';
  return "it leads to $to, which holds it" if "$from/" =~ m{\A\Q$to\E/} || "$unit/" =~ m{\A\Q$to\E/};
  # Inside the unit: locked with it, and followed all the same (the unit's own walk stops at $MAX_DEPTH).
  return undef if "$to/" =~ m{\A\Q$unit\E/};
  return "it leads to $to, a folder of XO's own" if $folder && xo_folder($to);
  # Another backup's: lifted with it at the end of its own window, whatever still reads through the link.
  return "it leads to $to, in another backup" if xo_unit($to);
  return "it leads to $to, a file at the remote's root" if !$folder && $to !~ m{/};
  return "it leads to $to, a cache XO rewrites" if !$folder && $to =~ m{(?:\A|/)cache\.json\.gz\z};
  return undef;
}

# Where the link `entry` in the held folder leads, opened (a folder, or not): (its path relative to the root, handle,
# the link's own path), or (why not). Resolved from the held folder, as a client resolves it: each leading `..` is the
# folder's parent as it is (never a path that a folder renamed meanwhile would send elsewhere), the names after it
# with openat2 RESOLVE_BENEATH from there (a link among them followed while it stays below), or without openat2 one at
# a time, no link on the way. A `..` after a name is not followed.
sub link_target {
  my ($dir, $entry, $folder) = @_;
  my $held = rel_of($dir);
  return ('its folder is not below the root any more') unless defined $held;
  my $from = $held eq '' ? $entry : "$held/$entry";
  my $text = readlink(fd_path($dir) . "/$entry");
  return ("it cannot be read ($!)") unless defined $text;
  return ('it is absolute: each client resolves it on its own') if $text =~ m{\A/};
  my @names = grep { $_ ne '' && $_ ne '.' } split m{/}, $text;
  my $at = $dir;
  while (@names && $names[0] eq '..') {
    shift @names;
    my $where = rel_of($at);
    return ('it leads outside the remote') if !defined $where || $where eq '';
    my $up;
    sysopen($up, fd_path($at) . '/..', $O_PATH | O_DIRECTORY) or return ("a folder above it cannot be opened ($!)");
    $at = $up;
  }
  return ('a "../" after a name: not followed') if grep { $_ eq '..' } @names;
  my $handle = @names ? open_below($at, join('/', @names), $folder) : $at;
  return $handle unless ref $handle;
  my $to = rel_of($handle);
  return defined $to ? ($to, $handle, $from) : ('it leads outside the remote');
}

# `names` (no `..`) below the held folder `at`, opened; a reason when it cannot be.
sub open_below {
  my ($at, $names, $folder) = @_;
  my $flags = $O_PATH | ($folder ? O_DIRECTORY : 0) | $O_CLOEXEC;
  if ($use_openat2 && !$openat2_missing) {
    # EAGAIN: a rename anywhere on the machine while a link with ".." was followed; tried again, then walked.
    for (1 .. 16) {
      my $fd = syscall($machine->{openat2}, fd_of($at) + 0, "$names", pack('QQQ', $flags, 0, $RESOLVE_BENEATH), 24);
      return adopt($fd) if $fd >= 0;
      next if $! == 11;
      return $! == 18 ? 'it leads, through another link, outside the folder it names'
        : $! == 20 ? 'it leads to a file' : "it leads nowhere ($!)";
    }
  }
  my @parts = split m{/}, $names;
  for my $i (0 .. $#parts) {
    my $last = $i == $#parts;
    my $next;
    sysopen($next, fd_path($at) . "/$parts[$i]", $O_PATH | O_NOFOLLOW | (!$last || $folder ? O_DIRECTORY : 0))
      or return $! == 40 || $! == 20 ? "a link or a file on the way ($parts[$i]): not followed"
      : "it leads nowhere ($!)";
    $at = $next;
  }
  return $at;
}

# Where a held folder is now, relative to the root (as the kernel names it), or undef when not below it.
sub rel_of {
  my $path = readlink(fd_path($_[0])) // '';
  return undef unless "$path/" =~ m{\A\Q$real_root\E/};
  return length($path) > length($real_root) ? substr($path, length($real_root) + 1) : '';
}

# A folder of XO's own above its units: the tops, a VM folder (or its run lock), vdis/, a job's or VDI's folder, data/,
# a config or pool schedule's folder, a pool's (a dot name on the way: never XO's).
sub xo_folder {
  my @parts = split m{/}, $_[0];
  return 0 if grep {/\A\./} @parts;
  return @parts <= 2 || ($parts[2] eq 'vdis' && (@parts <= 5 || (@parts == 6 && $parts[5] eq 'data')))
    if $parts[0] eq 'xo-vm-backups';
  return @parts <= 2 if $parts[0] eq 'xo-config-backups';
  return @parts <= 3 if $parts[0] eq 'xo-pool-metadata-backups';
  return 0;
}

# A backup of XO's own, or something inside one: a VM backup's json or flat VHD (or alias), a VHD directory, a config
# or pool metadata folder (dot names: never XO's).
sub xo_unit {
  my @parts = split m{/}, $_[0];
  return 0 if grep {/\A\./} @parts;
  if ($parts[0] eq 'xo-vm-backups') {
    return 1 if @parts >= 3 && $parts[2] =~ /\.json\z/;
    return 0 unless @parts >= 6 && $parts[2] eq 'vdis';
    return $parts[5] =~ /\.vhd\z/ || ($parts[5] eq 'data' && @parts >= 7 && $parts[6] =~ /\.vhd\z/) ? 1 : 0;
  }
  return @parts >= 3 if $parts[0] eq 'xo-config-backups';
  return @parts >= 4 if $parts[0] eq 'xo-pool-metadata-backups';
  return 0;
}

# The names in a held folder, dot names skipped; undef, with $! set, when it cannot be listed.
sub listed_names {
  my ($dir) = @_;
  my $listing;
  opendir($listing, fd_path($dir)) or return undef;
  my @names = grep { !/\A\./ } readdir($listing);
  closedir($listing);
  return \@names;
}

# An entry listed in a held folder, opened as a folder (O_PATH) when it is one: (handle), () for a link, a file or an
# entry gone since the listing, (undef, failure) for another error. One at a time, closed before the next: a folder
# holding more entries than the helper may keep descriptors must not keep its json locked.
sub open_folder_entry {
  my ($dir, $entry, $name) = @_;
  my $handle = open_at($dir, $entry, $O_PATH | O_NOFOLLOW | O_DIRECTORY);
  return ($handle) if $handle;
  return () if $! == 2 || $! == 20 || $! == 40;    # ENOENT, ENOTDIR, ELOOP
  return (undef, "$name cannot be opened ($!)");
}

# J's look, per request, by VM folder: its VDI folders ("vdis/<job>/<vdi>" each, listed down to the job folders), or
# why they cannot be looked through; how many jsons of it were looked for; and, from its third json, where its VDI
# folders hold a `<name>.vhd` (each listed once). A json's disk is looked for by name in each VDI folder, one open
# each, cheaper than listing them for a VM folder's first jsons (a nightly lift has one or two a VM folder). From the
# third, the listings cost less: folders cost XO's credentials nothing, and a request can hold thousands of one VM
# folder's jsons (the lift takes its turn with the lock batches, so a lift slowed that much is new backups left
# unlocked). Each json's disks are still read just before its clear.
my (%vdis_of, %looks_of, %vhds_of);

sub reset_looks { %vdis_of = (); %looks_of = (); %vhds_of = () }

sub list_vdi_folders {
  my ($vm) = @_;
  # vdis gone, a file or a link: no VDI folder (the daemon's own listing enters none either).
  my $vdis = open_unit("$vm/vdis");
  if (ref $vdis eq 'HASH') {
    return { folders => [] } if $vdis->{code} eq 'ENOENT';
    return { failed => "vdis cannot be looked through ($vdis->{code})" };
  }
  my $vdis_st = stat_at($vdis, '');
  return { folders => [] } if $vdis_st && !S_ISDIR($vdis_st->{mode});
  my $jobs = listed_names($vdis) // return { failed => "vdis cannot be listed ($!)" };
  my @folders;
  for my $job (@$jobs) {
    keep_alive(0);
    my ($job_dir, $failed) = open_folder_entry($vdis, $job, "vdis/$job");
    return { failed => $failed } if $failed;
    next unless $job_dir;
    my $vdi_names = listed_names($job_dir) // return { failed => "vdis/$job cannot be listed ($!)" };
    push @folders, map { [$job, $_] } @$vdi_names;
  }
  return { folders => \@folders };
}

# Where the VDI folders ([job, vdi] each, a job's together) hold a `<name>.vhd`, by name; a VDI folder that is a link,
# a file or gone holds none. One folder held at a time: a VM folder with more than the helper may keep open must not
# keep its jsons locked.
sub list_vhds {
  my ($vm, $folders) = @_;
  my %where;
  return { where => \%where } unless @$folders;
  my $vdis = open_unit("$vm/vdis");
  if (ref $vdis eq 'HASH') {
    return { where => \%where } if $vdis->{code} eq 'ENOENT';
    return { failed => "vdis cannot be looked through ($vdis->{code})" };
  }
  my ($job, $job_dir) = ('');
  for my $folder (@$folders) {
    keep_alive(0);
    my ($folder_job, $vdi) = @$folder;
    if ($folder_job ne $job || !defined $job_dir) {
      ($job, $job_dir) = ($folder_job, undef);
      my ($opened, $failed) = open_folder_entry($vdis, $job, "vdis/$job");
      return { failed => $failed } if $failed;
      next unless $opened;
      $job_dir = $opened;
    }
    my ($vdi_dir, $failed) = open_folder_entry($job_dir, $vdi, "vdis/$job/$vdi");
    return { failed => $failed } if $failed;
    next unless $vdi_dir;
    my $names = listed_names($vdi_dir) // return { failed => "vdis/$job/$vdi cannot be listed ($!)" };
    push @{ $where{$_} }, "vdis/$job/$vdi" for grep {/\.vhd\z/} @$names;
  }
  return { where => \%where };
}

# J: XO's cleanVm deletes the json of a backup whose flat VHD it cannot open (docs/xo-remote-layout.md), so a json is
# not cleared while a `<dt>.vhd` of its VM folder stays immutable, whatever keeps it so (a newer chain, a failed clear,
# a VDI folder renamed in). Read here, just before the json's own clear, on the flags themselves: no window between
# the look and the clear, and nothing trusted from an earlier answer. Returns undef, or the failure (EHELD).
sub flat_vhd_hold {
  my ($rel) = @_;
  my ($vm, $dt) = $rel =~ m{\A(xo-vm-backups/[^/]+)/([^/]+)\.json\z};
  return failure('EINVAL', "$root/$rel is not a VM backup's json: not touched") unless defined $dt;
  my $disk = "$dt.vhd";
  my $held = sub { failure('EHELD', "$root/$vm/$_[0]: the json stays locked, the next pass looks again") };
  my $vdis = $vdis_of{$vm} //= list_vdi_folders($vm);
  return $held->($vdis->{failed}) if $vdis->{failed};
  my $folders;
  if (++$looks_of{$vm} > 2) {
    my $found = $vhds_of{$vm} //= list_vhds($vm, $vdis->{folders});
    return $held->($found->{failed}) if $found->{failed};
    $folders = $found->{where}{$disk} // [];
  } else {
    # Only for the first two: a path string for every folder and json would be jsons x folders again.
    $folders = [map {"vdis/$_->[0]/$_->[1]"} @{ $vdis->{folders} }];
  }
  for my $folder (@$folders) {
    keep_alive(0);
    my $where = "$folder/$disk";
    # Walked again from the root: a folder swapped for a link since the listing is not entered, one gone holds nothing.
    # No such disk there (ENOENT from openat2) needs no walk to say why.
    my $handle = $use_openat2 ? open_at($anchor, "$vm/$where", $O_PATH | O_NOFOLLOW) : undef;
    next if !defined $handle && $use_openat2 && $! == 2;
    $handle //= open_unit("$vm/$where");
    if (ref $handle eq 'HASH') {
      next if $handle->{code} =~ /\A(?:ENOENT|ENOTDIR|ECONFINE)\z/;
      return $held->("$where cannot be read ($handle->{code})");
    }
    my $st = stat_at($handle, '') or return $held->("$where cannot be read ($!)");
    next unless S_ISREG($st->{mode});
    my $immutable = is_immutable($handle, $st, "$root/$vm/$where");
    next if defined $immutable && !$immutable;
    return $held->($where . (defined $immutable ? ' is still locked' : "'s flag cannot be read"));
  }
  return undef;
}

my %KINDS = (set => 'FVD', clear => 'FVDRvdJ', get => '?');
# The layout a directory found for v or d is held to.
my %EITHER = (v => 'V', d => 'D');

# Acts on one record of the request being served, and answers it.
sub answer {
  my ($n, $record) = @_;
  # A record is refused whole unless it is exactly "<kind> <inode[:birth] or -> <plain relative path>": an empty or cut
  # record never reaches the root.
  my ($kind, $identity, $rel) = $record =~ /\A([A-Za-z?]) (-|[0-9]{1,20}(?::[0-9]{1,20})?) ([^\0]+)\z/s;
  my ($inode, $birth) = split /:/, $identity // '';
  return emit($n, 'failed', 'EINVAL', 'malformed record "' . escape(substr($record, 0, 200)) . '": not touched')
    unless defined $rel;
  return emit($n, 'failed', 'EINVAL', escape("record kind $kind is not one of $op: not touched"))
    if index($KINDS{$op}, $kind) < 0;
  my $name = $rel eq '.' ? $root : "$root/$rel";
  return emit($n, 'failed', 'EINVAL', escape("$name: not a plain relative path"))
    if $rel ne '.' && grep { /\A(?:|\.|\.\.)\z/ } split m{/}, $rel, -1;
  return emit($n, 'failed', 'EINVAL', escape("$root is the remote itself, never a unit: not touched"))
    if $rel eq '.' && $kind ne 'R' && $kind ne '?';
  my $handle = open_unit($rel);
  return emit($n, $handle->{vanished} ? 'vanished' : 'failed', $handle->{code}, $handle->{message})
    if ref $handle eq 'HASH';
  my $st = stat_at($handle, '');
  my $refused = $st ? refusal($st, $name) : failure(errno_code($!), "$name: $!");
  if (!$refused && $inode ne '-') {
    my $found = birth_of($st);
    $birth =~ s/\A0+(?=[0-9])// if defined $birth;
    my $reborn = defined $birth && $birth ne '0' && $found ne '0' && $found ne $birth;
    $refused = failure('ECHANGED', "$name is not the file checked (inode/birth $st->{ino}/$found, expected "
        . "$inode/" . ($birth // '?') . '): not touched')
      if $st->{ino} ne $inode || $reborn;
  }
  my $file_kind = $kind eq 'F' || $kind eq 'J';
  if (!$refused && $kind =~ /[FVDJ]/ && (S_ISDIR($st->{mode}) ? 1 : 0) != ($file_kind ? 0 : 1)) {
    $refused = failure('EKIND', "$name is a " . (S_ISDIR($st->{mode}) ? 'directory' : 'file') . ', not the '
        . ($file_kind ? 'file' : 'directory') . ' it was checked to be: not touched');
  }
  $refused //= flat_vhd_hold($rel) if $kind eq 'J';
  return emit($n, 'failed', $refused->{code}, $refused->{message}) if $refused;
  if ($op eq 'get') {
    my $immutable = is_immutable($handle, $st, $name);
    return emit($n, $immutable ? 'on' : 'off', '-', '', identity_of($st)) if defined $immutable;
    my (undef, $failed) = flags_of($handle, $name);
    return emit($n, 'failed', $failed->{code}, $failed->{message});
  }
  my %problems = (count => 0);
  %foreign = (count => 0);
  $unit_uid = $st->{uid};
  ($unit_layout, $unit_handle, $followed) = ($EITHER{$kind} // $kind, $handle, 0);
  %blocks_folders = ("$name/blocks" => 1);
  %walked = ("$st->{dev}:$st->{ino}" => 1);
  if (S_ISDIR($st->{mode}) && $kind ne 'F') {
    $kind = $EITHER{$kind} // $kind;
    %listed = ();
    # A set is not checked first: it locks each folder before listing it, so nothing can be swapped in or out of what it
    # lists, and what it finds outside the layout is locked with the rest (change_tree). A check first could be made to
    # fail again and again (entries removed and made while it lists), and left the unit unlocked.
    my $failed = $kind eq 'R' || $op eq 'set' ? undef
      : check_tree($handle, $name, $kind, 0, $st->{dev}, 0, is_immutable($handle, $st, $name));
    if ($failed) { note(\%problems, $failed) }
    elsif (!$dry) { change_tree($handle, $name, $kind, 0, $st->{dev}, \%problems, $rel) }
  } else {
    my ($links, $refused) = extra_links($st, $name, $rel);
    note(\%foreign, $links) if $links;
    note(\%problems, $refused) if $refused;
    my $locked_here = 0;
    my $failed = $refused || $dry ? undef : change($handle, $name, $op eq 'set', \$locked_here);
    $failed //= still_there($handle, $rel, $name, $locked_here) if $op eq 'set' && !$refused;
    note(\%problems, $failed) if $failed;
  }
  if ($problems{count} == 0) {
    # What was locked is recorded by its identity (the window records); what was unlocked is forgotten: no statx.
    return emit($n, 'ok', '-', '') if $op eq 'clear';
    my $after = stat_at($handle, '');
    my $said = $foreign{count} > 1 ? ' (and ' . ($foreign{count} - 1) . ' more inside)' : '';
    return emit($n, 'ok', $foreign{count} ? ($foreign{first}{code}, $foreign{first}{message} . $said) : ('-', ''),
      $after ? identity_of($after) : undef);
  }
  my $more = $problems{count} > 1 ? ' (and ' . ($problems{count} - 1) . ' more problem(s) inside)' : '';
  return emit($n, 'failed', $problems{first}{code}, $problems{first}{message} . $more);
}

# The next field of a request, without its NUL; undef when stdin ends before one: nothing of a request cut short is
# acted on past what was answered.
sub next_field {
  my $field = <STDIN>;
  return undef unless defined $field && $field =~ s/\0\z//;
  return $field;
}

local $/ = "\0";
while (defined(my $header = next_field())) {
  my ($request_op, $count) = $header =~ /\A(set|clear|check|get) ([0-9]{1,9})\z/;
  my $request_root = next_field();
  my $request_real_root = next_field();
  if (!defined $count || !defined $request_real_root || $request_root eq '') {
    print "anchor\tEINVAL\t", escape('malformed request "' . substr($header, 0, 200) . '": nothing done'), "\n";
    exit 3;
  }
  ($op, $root, $real_root) = ($request_op, $request_root, $request_real_root);
  $dry = $op eq 'check';
  $op = 'clear' if $dry;
  reset_looks();
  my $refused = open_anchor();
  for my $n (0 .. $count - 1) {
    my $record = next_field();
    exit 3 unless defined $record;
    answer($n, $record) unless $refused;
  }
  print "anchor\t$refused->{code}\t$refused->{message}\n" if $refused;
  print "end\t", ($refused ? 0 : $count), "\n";
  # Nothing of this request is held while the helper waits for the next one.
  undef $anchor;
  undef $unit_handle;
  reset_looks();
  $| = 1;
  $| = 0;
  $sent_at = time;
}
