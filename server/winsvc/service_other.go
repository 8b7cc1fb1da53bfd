//go:build !windows

package winsvc

import (
	"context"
	"io"
)

func execute(context.Context, Options, io.Writer, io.Writer, ServeFunc) error {
	return errNotWindows
}
