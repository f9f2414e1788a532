# /etc/profile.d/ds01-notices.sh (ds01-controller): at login, show the ds01 notices you have
# not seen yet — warnings about your containers' idle and runtime limits, and stops that
# happened while you were away (`ds01ctl notices`; `ds01ctl notices --all` shows them again).
# Interactive shells only, nothing printed when there is nothing new, at most about one second,
# and never a failed login. Set DS01_NOTICES=0 in your environment to skip it.
case $- in
  *i*)
    if [ "${DS01_NOTICES:-1}" != 0 ] \
      && command -v ds01ctl >/dev/null 2>&1 \
      && command -v timeout >/dev/null 2>&1; then
      timeout -s KILL 1 ds01ctl notices --quiet 2>/dev/null || :
    fi
    ;;
esac
