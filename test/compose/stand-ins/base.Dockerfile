# The root filesystem every stand-in starts from: Debian 12 (bookworm, minbase) made by debootstrap from
# Debian's packages, with this machine's certificate authorities in its trust store (HTTPS leaves this
# machine through a proxy whose CA the host trusts; images that download packages need it too).
# Built by build.sh, which makes rootfs.tar; no registry is involved.
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
CMD ["bash"]
