// The step after Google sign-in (templates/student/signed_in.html): go on to
// the page asked for at once. A navigation this page starts is same-site, so
// the browser sends the SameSite=Strict sign-in cookie with it. replace(), not
// assign(): Back should not return to this step.
const link = document.querySelector("a[data-continue]");
if (link instanceof HTMLAnchorElement) {
  window.location.replace(link.href);
}
