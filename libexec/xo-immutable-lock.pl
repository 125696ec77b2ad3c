#!/usr/bin/perl
# Takes an exclusive flock(2) on the file open as descriptor 3, without waiting, and exits.
#
#   xo-immutable-lock.pl 3<LOCKFILE
#
# flock(2) locks the open file description, which the calling process shares through its own descriptor: the lock
# stays held after this helper exits, for as long as the caller keeps that descriptor open, and the kernel releases
# it when the caller closes it or dies, however it dies. Exit 0: locked; 1: another open file description holds it;
# 2: anything else (the reason on stderr).
use strict;
use Config;
use Fcntl qw(:flock);

# A perl built without flock(2) emulates it with fcntl(2) locks, which belong to this process and would end with it.
unless ($Config{d_flock}) {
  print STDERR "this perl has no flock(2)\n";
  exit 2;
}
open(my $fh, '+<&=', 3) or do { print STDERR "descriptor 3: $!\n"; exit 2 };
exit 0 if flock($fh, LOCK_EX | LOCK_NB);
exit 1 if $!{EWOULDBLOCK};
print STDERR "flock: $!\n";
exit 2;
