# zsh -f zsh-complete.zsh FPATH_DIR LINE...: types each LINE into an interactive zsh, presses Tab, and prints each
# match the completion functions offered as "OFFER:<match>", then "END-OF-OFFERS", per line.
zmodload zsh/zpty || exit 2
zpty shell zsh -f -i
zpty -w shell "PS1=''; PS2=''; fpath=(${(q)1} \$fpath)"
zpty -w shell 'autoload -Uz compinit && compinit -u -D'
# compadd prints what it is given to add and that matches the line (compadd -O); calls that only collect (-O, -A,
# -D) are passed through. The quotes keep the markers out of the echo of these lines.
zpty -w shell 'compadd() { local a; for a in "$@"; do [[ $a == -- ]] && break; [[ $a == -[[:alpha:]]#[OAD][[:alpha:]]# ]] && { builtin compadd "$@"; return; }; done; local -a found; builtin compadd -O found "$@"; print -r -l -- ${found/#/"OFF""ER:"}; builtin compadd "$@"; }'
# Tab completes, then marks the end of what it offered.
zpty -w shell 'complete-and-mark() { zle complete-word; print -r -- "END-OF-""OFFERS"; }; zle -N complete-and-mark'
zpty -w shell 'bindkey "^I" complete-and-mark; bindkey "^U" kill-whole-line'
shift
local line out
for line in "$@"; do
  zpty -w -n shell "$line"$'\t'
  zpty -r shell out '*END-OF-OFFERS*'
  print -r -- "$out"
  zpty -w -n shell $'\C-u'
done
zpty -d shell
