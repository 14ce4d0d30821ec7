package lrmd

import "errors"

// IsNotInstalled reports whether err (from Metadata) says the agent is not
// installed on this node, as opposed to an agent that failed to answer.
func IsNotInstalled(err error) bool { return errors.Is(err, errNotInstalled) }
