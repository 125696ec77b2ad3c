#!/usr/bin/perl
# Reads or changes the immutable flag of paths inside one folder without ever following a link below it.
#
#   xo-immutable-flags.pl set|clear|get ROOT REALROOT  < records
#
# ROOT is opened as given (the admin's links above it are followed) and must be REALROOT, as resolved at start.
# Each record on stdin ends with a NUL: "<R|F> <inode or -> <path relative to ROOT, or .>". R: a directory with
# everything in it; an inode: act only if the path is still that file. Every component below ROOT is opened with
# O_NOFOLLOW from the folder already held (/proc/self/fd/N/NAME is openat(N, NAME)), the last one with O_PATH, and
# the flag is read and changed through that descriptor, so nothing is resolved twice.
# One line per record, in order: "<n>\t<ok|vanished|failed|on|off>\t<code>\t<message>", then "end\t<n>".
# Names in messages are escaped (\xHH) and messages cut, so the output is bounded whatever the names.
# No `use warnings` and no Errno: each costs more start-up time than chattr's whole run, and the helper runs for every
# lock batch.
use strict;
use Fcntl qw(O_RDONLY O_NONBLOCK O_NOFOLLOW O_NOCTTY O_DIRECTORY S_ISREG S_ISDIR S_ISLNK);

# Linux numbers that perl's Fcntl does not export: the same on x86_64 and arm64 (asm-generic), the only
# architectures the adapter runs this on.
my $O_PATH = 0x200000;
my $FS_IOC_GETFLAGS = 0x80086601;
my $FS_IOC_SETFLAGS = 0x40086602;
my $FS_IMMUTABLE_FL = 0x10;
my $MAX_MESSAGE = 600;

# The errno numbers of x86_64 and arm64 (asm-generic) that a walk or an ioctl can meet.
my %ERRNO_NAME = (
  1 => 'EPERM', 2 => 'ENOENT', 4 => 'EINTR', 5 => 'EIO', 6 => 'ENXIO', 11 => 'EAGAIN', 12 => 'ENOMEM',
  13 => 'EACCES', 16 => 'EBUSY', 19 => 'ENODEV', 20 => 'ENOTDIR', 21 => 'EISDIR', 22 => 'EINVAL', 23 => 'ENFILE',
  24 => 'EMFILE', 25 => 'ENOTTY', 28 => 'ENOSPC', 30 => 'EROFS', 36 => 'ENAMETOOLONG', 40 => 'ELOOP',
  95 => 'EOPNOTSUPP', 116 => 'ESTALE',
);

my ($op, $root, $real_root) = @ARGV;
die "usage: xo-immutable-flags.pl set|clear|get ROOT REALROOT < NUL-separated records\n"
  unless defined $real_root && $op =~ /^(set|clear|get)$/;
binmode STDOUT;
binmode STDIN;

sub escape {
  my ($text) = @_;
  $text =~ s/([\x00-\x1f\x7f\\])/sprintf('\\x%02x', ord $1)/ge;
  return $text;
}

sub errno_code {
  my ($errno) = @_;
  my $name = $ERRNO_NAME{ $errno + 0 } // 'EUNKNOWN';
  return 'ENOTSUP' if $name eq 'ENOTTY' || $name eq 'EOPNOTSUPP';
  return $name;
}

sub emit {
  my ($n, $status, $code, $message) = @_;
  $message = substr($message, 0, $MAX_MESSAGE) . '...' if length $message > $MAX_MESSAGE;
  print "$n\t$status\t$code\t$message\n";
}

sub fd_path { return '/proc/self/fd/' . fileno($_[0]) }

# The anchor: opened following the admin's links, then it must be where the remote was found at start.
my $anchor;
if (!sysopen($anchor, $root, $O_PATH | O_DIRECTORY)) {
  print "anchor\t", errno_code($!), "\t", escape("cannot open $root: $!"), "\n";
  exit 3;
}
my $resolved = readlink(fd_path($anchor)) // '';
if ($resolved ne $real_root) {
  print "anchor\tECONFINE\t", escape("$root resolves to $resolved, not $real_root as at start"), "\n";
  exit 3;
}

# A failure of one path: a code and a message naming what failed.
sub failure { return { code => $_[0], message => escape($_[1]) } }

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
    return failure('EINVAL', "$root/$rel: not a plain relative path") if $part =~ /^(|\.|\.\.)$/;
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
      return failure('ECONFINE', "$walked is not a real folder (a symbolic link?): not followed")
        if $code eq 'ENOTDIR' || $code eq 'ELOOP';
      return failure($code, "$walked: $reason");
    }
    $walked .= "/$part";
    $dir = $next;
  }
  return $dir;
}

# What the flag can be changed on: a regular file with no other name, or a directory.
sub refusal {
  my ($handle, $name) = @_;
  my @st = stat($handle) or return failure(errno_code($!), "$name: $!");
  my $mode = $st[2];
  return failure('ENOTSUP', "$name is a symbolic link: not followed") if S_ISLNK($mode);
  return failure('ENOTSUP', "$name is not a regular file or directory") unless S_ISREG($mode) || S_ISDIR($mode);
  return failure('ELINKS', "$name has $st[3] hard links (one may be outside the remote): not touched")
    if S_ISREG($mode) && $st[3] > 1 && $op ne 'get';
  return undef;
}

# Reads the flags through a descriptor opened on the very file the O_PATH handle holds.
sub flags_of {
  my ($handle, $name) = @_;
  my $file;
  sysopen($file, fd_path($handle), O_RDONLY | O_NONBLOCK | O_NOCTTY)
    or return (undef, failure(errno_code($!), "$name: $!"));
  my $buffer = pack('i', 0) . "\0" x 4;
  ioctl($file, $FS_IOC_GETFLAGS, $buffer)
    or return (undef, failure(errno_code($!), "$!: while reading flags on $name"));
  return ($file, unpack('i', $buffer));
}

sub change {
  my ($handle, $name) = @_;
  my ($file, $flags) = flags_of($handle, $name);
  return $flags unless defined $file;
  my $wanted = $op eq 'set' ? ($flags | $FS_IMMUTABLE_FL) : ($flags & ~$FS_IMMUTABLE_FL);
  return undef if $wanted == $flags;
  my $buffer = pack('i', $wanted) . "\0" x 4;
  ioctl($file, $FS_IOC_SETFLAGS, $buffer)
    or return failure(errno_code($!), "$!: while setting flags on $name");
  return undef;
}

# Keeps the first problem of a path and counts the rest: a flood inside one directory costs one line.
sub note {
  my ($problems, $failure) = @_;
  $problems->{first} //= $failure;
  $problems->{count}++;
}

# A directory and everything in it: locked before its entries (so none can be swapped once it is immutable), unlocked
# after them. Entries are opened from the held directory, links and special files reported, never followed.
sub change_tree {
  my ($handle, $name, $problems) = @_;
  my @st = stat($handle);
  my $is_dir = @st && S_ISDIR($st[2]);
  if (!$is_dir || $op eq 'set') {
    my $failed = change($handle, $name);
    if ($failed) { note($problems, $failed); return }
  }
  if ($is_dir) {
    my $listing;
    if (!opendir($listing, fd_path($handle))) {
      note($problems, failure(errno_code($!), "$name: $!"));
    } else {
      my @names = grep { $_ ne '.' && $_ ne '..' } readdir($listing);
      closedir($listing);
      for my $entry (@names) {
        my $child_name = "$name/$entry";
        my $child;
        if (!sysopen($child, fd_path($handle) . "/$entry", $O_PATH | O_NOFOLLOW)) {
          note($problems, failure(errno_code($!), "$child_name: $!"));
          next;
        }
        my $refused = refusal($child, $child_name);
        if ($refused) { note($problems, $refused); next }
        change_tree($child, $child_name, $problems);
      }
    }
    if ($op ne 'set') {
      my $failed = change($handle, $name);
      note($problems, $failed) if $failed;
    }
  }
}

local $/ = "\0";
my $n = 0;
while (my $record = <STDIN>) {
  chomp $record;
  my ($kind, $inode, $rel) = split / /, $record, 3;
  my $name = $rel eq '.' ? $root : "$root/$rel";
  my $handle = walk($rel);
  if (ref $handle eq 'HASH') {
    emit($n++, $handle->{vanished} ? 'vanished' : 'failed', $handle->{code}, $handle->{message});
    next;
  }
  my @st = stat($handle);
  my $refused = refusal($handle, $name);
  if (!$refused && $inode ne '-' && $st[1] ne $inode) {
    $refused = failure('ECHANGED', "$name is not the file checked (inode $st[1], expected $inode): not touched");
  }
  if ($refused) {
    emit($n++, 'failed', $refused->{code}, $refused->{message});
    next;
  }
  if ($op eq 'get') {
    my ($file, $flags) = flags_of($handle, $name);
    if (defined $file) { emit($n++, ($flags & $FS_IMMUTABLE_FL) ? 'on' : 'off', '-', '') }
    else { emit($n++, 'failed', $flags->{code}, $flags->{message}) }
    next;
  }
  my %problems = (count => 0);
  if ($kind eq 'R') { change_tree($handle, $name, \%problems) }
  else { my $failed = change($handle, $name); note(\%problems, $failed) if $failed }
  if ($problems{count} == 0) { emit($n++, 'ok', '-', ''); next }
  my $more = $problems{count} > 1 ? ' (and ' . ($problems{count} - 1) . ' more problem(s) inside)' : '';
  emit($n++, 'failed', $problems{first}{code}, $problems{first}{message} . $more);
}
print "end\t$n\n";
