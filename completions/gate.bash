# Bash completion for gate (gate-ts). Install: source this file, or copy it
# to /etc/bash_completion.d/ or ~/.local/share/bash-completion/completions/gate.
#
# Completes global options, an optional server address, command names,
# module ids (first column of "gate [ADDRESS] modules") and wasm files,
# instance ids (first column of "gate [ADDRESS] instances"), debug
# subcommands and command options.

_gate_commands="call launch io repl wait kill suspend resume snapshot delete update status instances modules show pin unpin export import pull push migrate debug version help"

# The first column of "gate [ADDRESS] LIST", quietly.
_gate_ids()
{
	local gate=$1 addr=$2 list=$3
	if [ -n "$addr" ]; then
		"$gate" "$addr" "$list" 2>/dev/null </dev/null | cut -d' ' -f1
	else
		"$gate" "$list" 2>/dev/null </dev/null | cut -d' ' -f1
	fi
}

_gate_files()
{
	local cur=$1
	local IFS=$'\n'
	COMPREPLY+=( $(compgen -f -X '!*.wasm' -- "$cur") $(compgen -d -S / -- "$cur") )
}

_gate()
{
	local cur gate addr cmd i word argc
	cur="${COMP_WORDS[COMP_CWORD]}"
	gate="${COMP_WORDS[0]}"
	COMPREPLY=()
	addr=
	cmd=
	argc=0

	# Walk the words before the cursor: global options, address, command, arguments.
	for ((i = 1; i < COMP_CWORD; i++)); do
		word="${COMP_WORDS[i]}"
		if [ -z "$cmd" ]; then
			case "$word" in
				-o|-f|-F|-d) ((i++)); continue ;;
				-*) continue ;;
			esac
			if [ -z "$addr" ] && [[ "$word" == *.* || "$word" == *://* ]]; then
				addr="$word"
			else
				cmd="$word"
			fi
		else
			case "$word" in
				-O|--output|-f|--function|-s|--scope|--instance|--fuel|--time-limit|--memory-limit) ((i++)) ;;
				-*) ;;
				*) ((argc++)) ;;
			esac
		fi
	done

	if [ -z "$cmd" ]; then
		case "${COMP_WORDS[COMP_CWORD-1]}" in
			-f|-F) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
			-d) COMPREPLY=( $(compgen -d -- "$cur") ); return ;;
			-o) return ;;
		esac
		if [[ "$cur" == -* ]]; then
			COMPREPLY=( $(compgen -W "-o -f -F -d --json --no-color --version --help" -- "$cur") )
		else
			COMPREPLY=( $(compgen -W "$_gate_commands" -- "$cur") )
		fi
		return
	fi

	if [[ "$cur" == -* ]]; then
		case "$cmd" in
			call) COMPREPLY=( $(compgen -W "--function --scope --debug --in-process --fuel --time-limit --memory-limit" -- "$cur") ) ;;
			launch) COMPREPLY=( $(compgen -W "--function --scope --suspend --instance --debug" -- "$cur") ) ;;
			resume) COMPREPLY=( $(compgen -W "--debug" -- "$cur") ) ;;
			snapshot) COMPREPLY=( $(compgen -W "--output" -- "$cur") ) ;;
			migrate) COMPREPLY=( $(compgen -W "--keep" -- "$cur") ) ;;
		esac
		return
	fi
	if [ "${COMP_WORDS[COMP_CWORD-1]}" = -O ] || [ "${COMP_WORDS[COMP_CWORD-1]}" = --output ]; then
		COMPREPLY=( $(compgen -f -- "$cur") )
		return
	fi

	case "$cmd" in
		call|launch|pin)
			if [ "$argc" -eq 0 ]; then
				if [[ "$cur" == */* || "$cur" == *.* ]]; then
					_gate_files "$cur"
				else
					COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" modules)" -- "$cur") )
					_gate_files "$cur"
				fi
			fi
			;;
		show|unpin)
			[ "$argc" -eq 0 ] && COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" modules)" -- "$cur") )
			;;
		export)
			if [ "$argc" -eq 0 ]; then
				COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" modules)" -- "$cur") )
			elif [ "$argc" -eq 1 ]; then
				COMPREPLY=( $(compgen -f -- "$cur") )
			fi
			;;
		import)
			[ "$argc" -eq 0 ] && _gate_files "$cur"
			;;
		io|repl|wait|kill|suspend|resume|snapshot|delete|update|status)
			[ "$argc" -eq 0 ] && COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" instances)" -- "$cur") )
			;;
		debug)
			if [ "$argc" -eq 0 ]; then
				COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" instances)" -- "$cur") )
			elif [ "$argc" -eq 1 ]; then
				COMPREPLY=( $(compgen -W "dumptext" -- "$cur") )
			fi
			;;
		migrate)
			if [ "$argc" -eq 0 ]; then
				COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" instances)" -- "$cur") )
			elif [ "$argc" -le 2 ]; then
				COMPREPLY=( $(compgen -W "local" -- "$cur") )
			fi
			;;
		pull)
			# Modules of the other server (the first argument).
			if [ "$argc" -eq 0 ]; then
				COMPREPLY=( $(compgen -W "local" -- "$cur") )
			elif [ "$argc" -eq 1 ]; then
				local source="${COMP_WORDS[COMP_CWORD-1]}"
				[ "$source" = local ] && source=
				COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$source" modules)" -- "$cur") )
			fi
			;;
		push)
			if [ "$argc" -eq 0 ]; then
				COMPREPLY=( $(compgen -W "local" -- "$cur") )
			elif [ "$argc" -eq 1 ]; then
				COMPREPLY=( $(compgen -W "$(_gate_ids "$gate" "$addr" modules)" -- "$cur") )
			fi
			;;
		help)
			[ "$argc" -eq 0 ] && COMPREPLY=( $(compgen -W "$_gate_commands" -- "$cur") )
			;;
	esac
}

complete -o filenames -F _gate gate
