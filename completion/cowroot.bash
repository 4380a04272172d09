# bash completion for cowroot(8)                              -*- shell-script -*-
#
# Completes the command groups, their verbs, each verb's options and
# option values, and the names of the store's clients and images, which it
# asks of cowroot itself (`client list --json`, `image list --json`) with
# the --store given earlier on the command line.  Installed as
# bash-completion's completions/cowroot, which loads it at the first
# completion of `cowroot`; without bash-completion, source this file.
# It needs nothing but bash.

# The verbs of command group $1 (none for a command without verbs).
_cowroot_verbs()
{
	case $1 in
	image) echo "import list show rm flatten export load check" ;;
	client) echo "add set list reset rm diff snapshot shell rebase" ;;
	netboot) echo "sdcard dnsmasq" ;;
	tftp) echo "serve" ;;
	quota) echo "default" ;;
	esac
}

# The options of command $1 ("NOUN" or "NOUN VERB") that take a value.
_cowroot_value_opts()
{
	case $1 in
	init) echo "--default-quota --default-quota-files" ;;
	"image import") echo "--arch" ;;
	"image check") echo "--fix" ;;
	"client add") echo "--image --ip --serial --mac" ;;
	"client set") echo "--ip --serial --mac --boot-args --dtb --on-boot --quota --quota-files" ;;
	"client rebase") echo "--onto" ;;
	mount) echo "--image -o" ;;
	serve) echo "--port --server --fsal --tftp-port --tftp-address --tftp-max --boot-gap" ;;
	"netboot sdcard") echo "--server --image --arch --uboot-dir --firmware-dir --dtb-dir" ;;
	"netboot dnsmasq") echo "--interface --server --range --subnet" ;;
	"tftp serve")
		echo "--root --client --boot-gap --nfs-port --port --address --max-transfers --max-per-peer" \
			"--max-blksize --refusal-lines"
		;;
	"quota default") echo "--quota --quota-files" ;;
	esac
}

# The options of command $1 that take no value.
_cowroot_flag_opts()
{
	case $1 in
	"image import" | "image list" | "image show" | "image check" | "client list" | "client diff" | \
		"client rebase" | "quota default" | stats)
		echo "--json --help"
		;;
	"client shell") echo "--chroot --help" ;;
	mount) echo "-f -d --help" ;;
	serve) echo "--foreground --no-grace --no-tftp --allow-unprivileged-ports --help" ;;
	"netboot sdcard") echo "--force --help" ;;
	"netboot dnsmasq") echo "--proxy --help" ;;
	"tftp serve") echo "--boot --help" ;;
	fsck) echo "--repair --help" ;;
	*) echo "--help" ;;
	esac
}

# What the positional arguments of command $1 are, in order: client or
# image (a name in the store), file, dir, or new (a name to make up).
# $2 is set when the command line has mount's --image.
_cowroot_positionals()
{
	case $1 in
	"image import") echo "new file" ;;
	"image show" | "image rm" | "image check") echo "image" ;;
	"image flatten") echo "image new" ;;
	"image export") echo "image file" ;;
	"image load") echo "file new" ;;
	"client add") echo "new" ;;
	"client set" | "client reset" | "client rm" | "client diff" | "client shell" | "client rebase") echo "client" ;;
	"client snapshot") echo "client new" ;;
	mount) [[ -n $2 ]] && echo "dir" || echo "client dir" ;;
	"netboot sdcard") echo "dir" ;;
	esac
}

# The names of the store's clients or images ($1 client|image), asked of
# cowroot $2 with store $3 ("": its default).  Names are 1-64 of
# A-Z a-z 0-9 . _ @ + -, so the JSON strings hold no escapes.
_cowroot_names()
{
	local kind=$1 prog=$2 store=$3 json re='\{"name":"([^"\\]*)"'
	local -a argv=("$prog")
	[[ -n $store ]] && argv+=(--store "$store")
	argv+=("$kind" list --json)
	# a server that does not answer must not hang the shell
	type -P timeout >/dev/null && argv=(timeout 5 "${argv[@]}")
	json=$("${argv[@]}" 2>/dev/null)
	while [[ $json =~ $re ]]; do
		printf '%s\n' "${BASH_REMATCH[1]}"
		json=${json#*"${BASH_REMATCH[0]}"}
	done
}

# COMPREPLY: the words of $1 that start with $2.
_cowroot_words()
{
	local w
	local -a list
	read -r -d "" -a list <<<"$1"
	COMPREPLY=()
	for w in "${list[@]}"; do
		[[ $w == "$2"* ]] && COMPREPLY+=("$w")
	done
}

# COMPREPLY: files (or with $1 "dir", directories) starting with $2.
_cowroot_paths()
{
	compopt -o filenames 2>/dev/null
	if [[ $1 == dir ]]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$2")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$2")
	fi
}

# COMPREPLY: values of kind $1 (client, image, file, dir, new, or a word
# list "w:WORD WORD...") starting with $2; $3 the cowroot, $4 the store.
_cowroot_complete()
{
	case $1 in
	client | image) _cowroot_words "$(_cowroot_names "$1" "$3" "$4")" "$2" ;;
	file | dir) _cowroot_paths "$1" "$2" ;;
	w:*) _cowroot_words "${1#w:}" "$2" ;;
	*) COMPREPLY=() ;;
	esac
}

# What the value of option $2 of command $1 is (a kind for _cowroot_complete).
_cowroot_value_kind()
{
	case $2 in
	--store | --root | --uboot-dir | --firmware-dir | --dtb-dir) echo dir ;;
	--fsal) echo file ;;
	--image | --onto) echo image ;;
	--client) echo client ;;
	--on-boot) echo "w:reset keep" ;;
	--arch) [[ $1 == "image import" ]] && echo "w:amd64 arm64 arm 386 ppc64le s390x riscv64" || echo "w:arm64 arm" ;;
	--interface) echo "w:$(cd /sys/class/net 2>/dev/null && echo *)" ;;
	*) echo new ;;
	esac
}

_cowroot()
{
	local prog=${COMP_WORDS[0]} i w
	[[ $prog == "~"* ]] && prog=$HOME${prog#"~"}

	# The words as cowroot sees them: bash splits --opt=value at the '='
	# (COMP_WORDBREAKS); join them again.
	local -a words=()
	local cword=0 join=0
	for ((i = 0; i < ${#COMP_WORDS[@]} && i <= COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((join)); then
			words[${#words[@]} - 1]+=$w
			join=0
		elif ((i > 0)) && [[ $w == "=" && ${words[${#words[@]} - 1]} == -* &&
			${words[${#words[@]} - 1]} != *=* ]]; then
			words[${#words[@]} - 1]+="="
			join=1
		else
			words+=("$w")
		fi
		cword=$((${#words[@]} - 1))
	done
	local cur=${words[cword]}

	# What comes before the word completed: the global options, the
	# command, its options and positional arguments.
	local store="" noun="" verb="" cmd="" value_of="" dashdash=-1 image_opt=""
	local -a args=() used=()
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [[ -n $value_of ]]; then
			[[ $value_of == --store && -z $noun ]] && store=$w
			[[ $value_of == --image ]] && image_opt=$w
			value_of=""
			continue
		fi
		if ((dashdash >= 0)); then
			args+=("$w")
			continue
		fi
		if [[ -z $noun ]]; then
			case $w in
			--store) value_of=--store ;;
			--store=*) store=${w#--store=} ;;
			-*) ;;
			*) noun=$w cmd=$w ;;
			esac
			continue
		fi
		if [[ -z $verb && -n $(_cowroot_verbs "$noun") ]]; then
			verb=$w cmd="$noun $w"
			continue
		fi
		case $w in
		--)
			[[ $cmd == "client shell" ]] && dashdash=${#args[@]}
			;;
		-*=*)
			used+=("${w%%=*}")
			[[ ${w%%=*} == --image ]] && image_opt=${w#*=}
			;;
		-*)
			used+=("$w")
			[[ " $(_cowroot_value_opts "$cmd") " == *" $w "* ]] && value_of=$w
			;;
		*) args+=("$w") ;;
		esac
	done

	COMPREPLY=()
	# the value of an option: --opt VALUE, or --opt=VALUE
	if [[ -n $value_of ]]; then
		_cowroot_complete "$(_cowroot_value_kind "$cmd" "$value_of")" "$cur" "$prog" "$store"
		return 0
	fi
	if [[ $cur == --*=* && $dashdash -lt 0 ]]; then
		local opt=${cur%%=*} val=${cur#*=}
		[[ -z $noun && $opt != --store ]] && return 0
		[[ -n $noun && " $(_cowroot_value_opts "$cmd") " != *" $opt "* ]] && return 0
		_cowroot_complete "$(_cowroot_value_kind "$cmd" "$opt")" "$val" "$prog" "$store"
		# bash replaces only what follows the '=' when '=' breaks words
		if [[ $COMP_WORDBREAKS != *=* ]]; then
			for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=$opt=${COMPREPLY[i]}; done
		fi
		return 0
	fi

	if [[ -z $noun ]]; then
		if [[ $cur == -* ]]; then
			_cowroot_words "--store --help --version" "$cur"
		else
			_cowroot_words "init image client mount serve netboot tftp quota fsck gc stats version" "$cur"
		fi
		return 0
	fi
	local verbs
	verbs=$(_cowroot_verbs "$noun")
	if [[ -n $verbs && -z $verb ]]; then
		if [[ $cur == -* ]]; then
			_cowroot_words "--help" "$cur"
		else
			_cowroot_words "$verbs" "$cur"
		fi
		return 0
	fi
	case $noun in
	init | image | client | mount | serve | netboot | tftp | quota | fsck | gc | stats | version) ;;
	*) return 0 ;;
	esac
	[[ -n $verb && " $verbs " != *" $verb "* ]] && return 0

	# client shell NAME -- COMMAND ARGS...
	if ((dashdash >= 0)); then
		if ((${#args[@]} == dashdash)); then
			mapfile -t COMPREPLY < <(compgen -c -- "$cur")
		else
			_cowroot_paths file "$cur"
		fi
		return 0
	fi

	local -a opts=() kinds=()
	for w in $(_cowroot_value_opts "$cmd") $(_cowroot_flag_opts "$cmd"); do
		[[ " ${used[*]} " == *" $w "* ]] || opts+=("$w")
	done
	[[ $cmd == "client shell" && ${#args[@]} -ge 1 ]] && opts+=(--)
	if [[ $cur == -* ]]; then
		_cowroot_words "${opts[*]}" "$cur"
		return 0
	fi
	read -r -a kinds <<<"$(_cowroot_positionals "$cmd" "$image_opt")"
	if ((${#args[@]} < ${#kinds[@]})); then
		_cowroot_complete "${kinds[${#args[@]}]}" "$cur" "$prog" "$store"
	else
		# nothing more to name: what is left are the options
		_cowroot_words "${opts[*]}" "$cur"
	fi
	return 0
}

complete -F _cowroot cowroot
